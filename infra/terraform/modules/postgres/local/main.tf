# Local implementation of the "postgres" catalog type: a database and its own login
# role on a shared PostgreSQL server, made and dropped with psql.
#
# The admin connection is the environment of the terraform process, set by the runner:
# PGHOST, PGPORT, PGUSER (a superuser, e.g. ssi_admin), PGPASSWORD and PGDATABASE
# (postgres); psql is found on PATH. Nothing secret is ever on a command line: the new
# password reaches the provisioner as the environment variable NEW_PASSWORD and psql
# reads it with \getenv (psql 15+); the SQL comes on standard input.
#
# Every step converges (safe to re-run after a kill mid-apply): a role or database that
# already exists is kept and brought to the wanted settings. The password is set by a
# resource of its own (triggered by a hash of it), so a new password replaces only that
# resource and never the database.

locals {
  hex      = lower(replace(var.request_id, "-", ""))
  database = "ssi_${local.hex}"
  username = "ssi_${local.hex}"
}

resource "null_resource" "database" {
  triggers = {
    request_id    = var.request_id
    team_id       = var.team_id
    resource_type = "postgres"
    database      = local.database
    username      = local.username
  }

  # The role may log in, nothing more; it owns its database, which nobody else may
  # connect to (REVOKE ALL ... FROM PUBLIC; superusers excepted).
  provisioner "local-exec" {
    interpreter = ["bash", "-c"]
    environment = {
      SSI_DATABASE = self.triggers.database
      SSI_ROLE     = self.triggers.username
    }
    command = <<-EOT
      set -euo pipefail
      command -v psql >/dev/null || { echo "psql is not on PATH" >&2; exit 1; }
      : "$${PGHOST:?PGHOST (admin connection) is not set}" "$${PGUSER:?PGUSER is not set}"
      PGCONNECT_TIMEOUT=$${PGCONNECT_TIMEOUT:-10} psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
      \getenv db SSI_DATABASE
      \getenv role SSI_ROLE
      SELECT format('CREATE ROLE %I', :'role')
       WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
      SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT', :'role') \gexec
      SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'db', :'role', 'UTF8')
       WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
      SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'role') \gexec
      SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
      SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'db', :'role') \gexec
      SQL
    EOT
  }

  # Drop the database (closing its connections) and the role; both may be gone already.
  provisioner "local-exec" {
    when        = destroy
    interpreter = ["bash", "-c"]
    environment = {
      SSI_DATABASE = self.triggers.database
      SSI_ROLE     = self.triggers.username
    }
    command = <<-EOT
      set -euo pipefail
      command -v psql >/dev/null || { echo "psql is not on PATH" >&2; exit 1; }
      : "$${PGHOST:?PGHOST (admin connection) is not set}" "$${PGUSER:?PGUSER is not set}"
      PGCONNECT_TIMEOUT=$${PGCONNECT_TIMEOUT:-10} psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
      \getenv db SSI_DATABASE
      \getenv role SSI_ROLE
      SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'db') \gexec
      SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :'role' \g /dev/null
      SELECT format('DROP ROLE IF EXISTS %I', :'role') \gexec
      SQL
    EOT
  }
}

# The password, apart: changing var.password replaces this resource only. Old sessions
# stay open; new logins need the new password. Terraform hides the provisioner's output
# because its environment holds a sensitive value.
resource "null_resource" "password" {
  triggers = {
    request_id      = var.request_id
    team_id         = var.team_id
    resource_type   = "postgres"
    username        = null_resource.database.triggers.username
    password_sha256 = sha256("${var.request_id}:${var.password}")
  }

  provisioner "local-exec" {
    interpreter = ["bash", "-c"]
    environment = {
      SSI_ROLE     = self.triggers.username
      NEW_PASSWORD = var.password
    }
    # log_min_error_statement = panic: if the ALTER fails, its text (with the password
    # literal) is not copied into the server log. The password is hashed by the server
    # (SCRAM-SHA-256) before it is stored.
    command = <<-EOT
      set -euo pipefail
      command -v psql >/dev/null || { echo "psql is not on PATH" >&2; exit 1; }
      : "$${PGHOST:?PGHOST (admin connection) is not set}" "$${PGUSER:?PGUSER is not set}"
      PGCONNECT_TIMEOUT=$${PGCONNECT_TIMEOUT:-10} psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
      SET log_min_error_statement = panic;
      SET password_encryption = 'scram-sha-256';
      \getenv role SSI_ROLE
      \getenv pw NEW_PASSWORD
      ALTER ROLE :"role" WITH PASSWORD :'pw';
      \unset pw
      SQL
    EOT
  }
}
