# Local implementation of the "redis" catalog type: an ACL user on a shared Redis whose
# keys must start with its own prefix ssi_<32 hex>:, made and removed with redis-cli.
#
# The admin connection is the environment of the terraform process, set by the runner:
# REDIS_HOST, REDIS_PORT and REDISCLI_AUTH (the password of the admin user, read by
# redis-cli itself); redis-cli is found on PATH. The new password never reaches a command
# line, nor Redis itself: the provisioner gets it as the environment variable
# NEW_PASSWORD, hashes it (bash's printf builtin piped to sha256sum) and sends
# `ACL SETUSER ... #<sha256>` on redis-cli's standard input.
#
# The user may run every command but the dangerous ones (KEYS, FLUSHALL, CONFIG, ...),
# scripting, and those that would reach other tenants' keys or databases: SCAN and
# RANDOMKEY (they see every key name), SELECT, MOVE, COPY, SWAPDB; no Pub/Sub channels.
# Every step converges (ACL SETUSER is idempotent). The password is set by a resource of
# its own, so a new password replaces only that resource; the user and the keys stay.
# ACL users live in the server's memory: a local Redis restarted without an ACL file
# forgets them (the local engine of scripts/provision-tools.sh keeps nothing anyway).

locals {
  hex        = lower(replace(var.request_id, "-", ""))
  username   = "ssi_${local.hex}"
  key_prefix = "ssi_${local.hex}:"

  # The client calls of the create-time provisioners (REDISCLI_AUTH comes from the
  # environment); the destroy provisioner has a copy, as it may only refer to self.
  client = <<-EOT
    set -euo pipefail
    command -v redis-cli >/dev/null || { echo "redis-cli is not on PATH" >&2; exit 1; }
    : "$${REDIS_HOST:?REDIS_HOST (admin connection) is not set}" "$${REDISCLI_AUTH:?REDISCLI_AUTH is not set}"
    [[ $SSI_USER =~ ^ssi_[0-9a-f]{32}$ && $SSI_PREFIX == "$SSI_USER:" ]] || { echo "unexpected names" >&2; exit 1; }
    rcli() { redis-cli --no-auth-warning -h "$REDIS_HOST" -p "$${REDIS_PORT:-6379}" "$@"; }
    # expect WANT COMMAND...: run one command, fail unless the reply is WANT.
    expect() { local want=$1 out; shift; out=$(rcli "$@") || true; [[ $out == "$want" ]] || { echo "redis: $1 $2: $out" >&2; exit 1; }; }
  EOT
}

resource "null_resource" "user" {
  triggers = {
    request_id    = var.request_id
    team_id       = var.team_id
    resource_type = "redis"
    username      = local.username
    key_prefix    = local.key_prefix
  }

  # Created without a password, so nobody can log in as it until the password resource
  # has run.
  provisioner "local-exec" {
    interpreter = ["bash", "-c"]
    environment = {
      SSI_USER   = self.triggers.username
      SSI_PREFIX = self.triggers.key_prefix
    }
    command = <<-EOT
      ${local.client}
      expect OK ACL SETUSER "$SSI_USER" on resetkeys "~$SSI_PREFIX*" resetchannels \
        nocommands +@all -@dangerous -@scripting -scan -randomkey -select -move -copy -swapdb
    EOT
  }

  # Remove the user (Redis closes its connections) and every key with its prefix; both
  # may be gone already. The keys are deleted by a server-side SCAN loop.
  provisioner "local-exec" {
    when        = destroy
    interpreter = ["bash", "-c"]
    environment = {
      SSI_USER   = self.triggers.username
      SSI_PREFIX = self.triggers.key_prefix
    }
    command = <<-EOT
      # (inlined: a destroy provisioner may only refer to self)
      set -euo pipefail
      command -v redis-cli >/dev/null || { echo "redis-cli is not on PATH" >&2; exit 1; }
      : "$${REDIS_HOST:?REDIS_HOST (admin connection) is not set}" "$${REDISCLI_AUTH:?REDISCLI_AUTH is not set}"
      [[ $SSI_USER =~ ^ssi_[0-9a-f]{32}$ && $SSI_PREFIX == "$SSI_USER:" ]] || { echo "unexpected names" >&2; exit 1; }
      rcli() { redis-cli --no-auth-warning -h "$REDIS_HOST" -p "$${REDIS_PORT:-6379}" "$@"; }
      # expect WANT COMMAND...: run one command, fail unless the reply is WANT.
      expect() { local want=$1 out; shift; out=$(rcli "$@") || true; [[ $out == "$want" ]] || { echo "redis: $1 $2: $out" >&2; exit 1; }; }
      out=$(rcli ACL DELUSER "$SSI_USER") && [[ $out =~ ^[01]$ ]] || { echo "redis: ACL DELUSER: $out" >&2; exit 1; }
      out=$(rcli EVAL "local c = '0'
        local n = 0
        repeat
          local r = redis.call('SCAN', c, 'MATCH', ARGV[1], 'COUNT', 1000)
          c = r[1]
          for _, k in ipairs(r[2]) do redis.call('UNLINK', k); n = n + 1 end
        until c == '0'
        return n" 0 "$SSI_PREFIX*") && [[ $out =~ ^[0-9]+$ ]] || { echo "redis: deleting $SSI_PREFIX*: $out" >&2; exit 1; }
      echo "removed user $SSI_USER and $out key(s)"
    EOT
  }
}

# The password, apart: changing var.password replaces this resource only (connections
# already authenticated stay; new logins need the new password). Terraform hides the
# provisioner's output because its environment holds a sensitive value.
resource "null_resource" "password" {
  triggers = {
    request_id      = var.request_id
    team_id         = var.team_id
    resource_type   = "redis"
    username        = null_resource.user.triggers.username
    password_sha256 = sha256("${var.request_id}:${var.password}")
  }

  provisioner "local-exec" {
    interpreter = ["bash", "-c"]
    environment = {
      SSI_USER     = self.triggers.username
      SSI_PREFIX   = null_resource.user.triggers.key_prefix
      NEW_PASSWORD = var.password
    }
    command = <<-EOT
      ${local.client}
      hash=$(printf '%s' "$NEW_PASSWORD" | sha256sum) && hash=$${hash%% *}
      [[ $hash =~ ^[0-9a-f]{64}$ ]] || { echo "sha256sum failed" >&2; exit 1; }
      out=$(printf 'ACL SETUSER %s resetpass #%s\n' "$SSI_USER" "$hash" | rcli) || true
      [[ $out == OK ]] || { echo "redis: ACL SETUSER (password): $out" >&2; exit 1; }
    EOT
  }
}
