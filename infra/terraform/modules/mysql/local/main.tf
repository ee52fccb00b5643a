# Local implementation of the "mysql" catalog type: a database and its own user on a
# shared MariaDB (or MySQL) server, made and dropped with the mariadb (or mysql) client.
#
# The admin connection is the environment of the terraform process, set by the runner:
# MYSQL_HOST, MYSQL_TCP_PORT, MYSQL_USER (an admin with GRANT OPTION, e.g. ssi_admin) and
# MYSQL_PWD (read by the client itself); the client is found on PATH. Nothing secret is
# on a command line: the new password reaches the provisioner as the environment
# variable NEW_PASSWORD and goes to the client on standard input through bash's printf
# builtin, inside a string literal quoted for sql_mode NO_BACKSLASH_ESCAPES (a quote is
# doubled, a backslash is just a backslash).
#
# Every step converges (safe to re-run after a kill mid-apply). The user is created
# locked and is unlocked by the password resource, so it is never usable without a
# password; changing the password replaces only that resource, never the database.
# User names are ssi_<32 hex> (36 characters): fine for MariaDB (80), too long for
# MySQL 8 (32), which is why the local engine is MariaDB.

locals {
  hex      = lower(replace(var.request_id, "-", ""))
  database = "ssi_${local.hex}"
  username = "ssi_${local.hex}"

  # The client call of the create-time provisioners (MYSQL_PWD comes from the
  # environment); the destroy provisioner has a copy, as it may only refer to self.
  client = <<-EOT
    set -euo pipefail
    client=$(command -v mariadb || command -v mysql) || { echo "neither mariadb nor mysql is on PATH" >&2; exit 1; }
    : "$${MYSQL_HOST:?MYSQL_HOST (admin connection) is not set}" "$${MYSQL_USER:?MYSQL_USER is not set}" "$${MYSQL_PWD:?MYSQL_PWD is not set}"
    [[ $SSI_DATABASE =~ ^ssi_[0-9a-f]{32}$ && $SSI_USER =~ ^ssi_[0-9a-f]{32}$ ]] || { echo "unexpected names" >&2; exit 1; }
    sql() { "$client" --no-defaults --protocol=TCP --host="$MYSQL_HOST" --port="$${MYSQL_TCP_PORT:-3306}" --user="$MYSQL_USER" --connect-timeout=10 --batch --skip-column-names "$@"; }
  EOT
}

resource "null_resource" "database" {
  triggers = {
    request_id    = var.request_id
    team_id       = var.team_id
    resource_type = "mysql"
    database      = local.database
    username      = local.username
  }

  # The user gets every privilege on its own database and nothing else.
  provisioner "local-exec" {
    interpreter = ["bash", "-c"]
    environment = {
      SSI_DATABASE = self.triggers.database
      SSI_USER     = self.triggers.username
    }
    command = <<-EOT
      ${local.client}
      printf '%s\n' \
        "CREATE DATABASE IF NOT EXISTS \`$SSI_DATABASE\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;" \
        "CREATE USER IF NOT EXISTS '$SSI_USER'@'%' ACCOUNT LOCK;" \
        "GRANT ALL PRIVILEGES ON \`$SSI_DATABASE\`.* TO '$SSI_USER'@'%';" | sql
    EOT
  }

  # Close the user's sessions, drop the database and the user; both may be gone already.
  provisioner "local-exec" {
    when        = destroy
    interpreter = ["bash", "-c"]
    environment = {
      SSI_DATABASE = self.triggers.database
      SSI_USER     = self.triggers.username
    }
    command = <<-EOT
      # (inlined: a destroy provisioner may only refer to self)
      set -euo pipefail
      client=$(command -v mariadb || command -v mysql) || { echo "neither mariadb nor mysql is on PATH" >&2; exit 1; }
      : "$${MYSQL_HOST:?MYSQL_HOST (admin connection) is not set}" "$${MYSQL_USER:?MYSQL_USER is not set}" "$${MYSQL_PWD:?MYSQL_PWD is not set}"
      [[ $SSI_DATABASE =~ ^ssi_[0-9a-f]{32}$ && $SSI_USER =~ ^ssi_[0-9a-f]{32}$ ]] || { echo "unexpected names" >&2; exit 1; }
      sql() { "$client" --no-defaults --protocol=TCP --host="$MYSQL_HOST" --port="$${MYSQL_TCP_PORT:-3306}" --user="$MYSQL_USER" --connect-timeout=10 --batch --skip-column-names "$@"; }
      printf '%s\n' "DROP USER IF EXISTS '$SSI_USER'@'%';" "DROP DATABASE IF EXISTS \`$SSI_DATABASE\`;" | sql
      ids=$(printf '%s\n' "SELECT id FROM information_schema.processlist WHERE user = '$SSI_USER';" | sql)
      for id in $ids; do printf 'KILL CONNECTION %d;\n' "$id" | sql 2>/dev/null || true; done
    EOT
  }
}

# The password, apart: changing var.password replaces this resource only (old sessions
# stay open; new logins need the new password). Terraform hides the provisioner's
# output because its environment holds a sensitive value.
resource "null_resource" "password" {
  triggers = {
    request_id      = var.request_id
    team_id         = var.team_id
    resource_type   = "mysql"
    username        = null_resource.database.triggers.username
    password_sha256 = sha256("${var.request_id}:${var.password}")
  }

  provisioner "local-exec" {
    interpreter = ["bash", "-c"]
    environment = {
      SSI_DATABASE = null_resource.database.triggers.database
      SSI_USER     = self.triggers.username
      NEW_PASSWORD = var.password
    }
    command = <<-EOT
      ${local.client}
      q="'"
      printf "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES';\nALTER USER '%s'@'%%' IDENTIFIED BY '%s' ACCOUNT UNLOCK;\n" \
        "$SSI_USER" "$${NEW_PASSWORD//$q/$q$q}" | sql
    EOT
  }
}
