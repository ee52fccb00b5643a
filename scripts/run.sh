#!/usr/bin/env bash
# `make run`: the whole system on this machine: the API on http://127.0.0.1:${PORT:-3000}
# backed by DynamoDB Local, and the provisioning runner that applies approved requests
# with Terraform to local PostgreSQL, MariaDB and Redis servers, moto (S3, SQS) and a
# simulated Kubernetes (all on 127.0.0.1, free ports).
#
# 1. checks prerequisites (cargo; and, unless DYNAMODB_ENDPOINT is set, Java 17+,
#    node/npm and curl) and installs node packages when missing (npm ci);
# 2. builds the dev server, the ssi-admin CLI and the runner;
# 3. unless DYNAMODB_ENDPOINT is set, starts DynamoDB Local on ${DYNAMODB_PORT:-8000}
#    (in memory: every run starts with an empty database);
# 4. unless JWT_SECRET or JWT_SECRET_FILE is set, uses .local/jwt-secret (created once,
#    mode 0600, 64 random hex characters);
# 5. creates the table from template.yaml (ssi-admin create-table, idempotent);
# 6. when both ADMIN_EMAIL and ADMIN_PASSWORD are set, creates that admin;
# 7. installs the provisioning tools when missing (scripts/provision-tools.sh), starts
#    PostgreSQL, MariaDB, Redis and moto, a local mail sink (aiosmtpd, each message a
#    file under .local/mail/<run>/new/), and the runner (`ssi-runner worker`), which
#    also delivers notifications to that sink;
# 8. runs the dev server in the foreground. Ctrl-C stops all of it.
#
# Two copies can run side by side with different PORT and DYNAMODB_PORT.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/dynamodb-local.sh
. "$ROOT/scripts/dynamodb-local.sh"
# shellcheck source=scripts/provision-tools.sh
. "$ROOT/scripts/provision-tools.sh"

die() {
    printf 'run: error: %s\n' "$*" >&2
    exit 1
}
step() { printf '\n==> %s\n' "$*"; }

DEV_PID=
RUNNER_PID=
MAIL_PID=
# shellcheck disable=SC2317 # invoked by the traps below
cleanup() {
    if [[ -n $DEV_PID ]]; then
        ddb_kill_wait "$DEV_PID" 10
        DEV_PID=
    fi
    # SIGTERM: the runner stops its Terraform runs and gives their jobs back.
    if [[ -n $RUNNER_PID ]]; then
        ddb_kill_wait "$RUNNER_PID" 30
        RUNNER_PID=
    fi
    if [[ -n $MAIL_PID ]]; then
        ddb_kill_wait "$MAIL_PID" 10
        MAIL_PID=
    fi
    pt_stop_all
    ddb_stop
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

is_port() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= 65535)); }

# --- prerequisites -----------------------------------------------------------------
command -v cargo >/dev/null 2>&1 ||
    die "cargo not found. Install Rust stable with rustup, then open a new shell (or 'source ~/.cargo/env')."

export PORT=${PORT:-3000}
is_port "$PORT" || die "PORT must be a TCP port number, got '$PORT'"
export TABLE_NAME=${TABLE_NAME:-ssi-local}
export AWS_REGION=${AWS_REGION:-us-east-1}

if [[ -z ${DYNAMODB_ENDPOINT:-} ]]; then
    export DYNAMODB_PORT=${DYNAMODB_PORT:-8000}
    is_port "$DYNAMODB_PORT" || die "DYNAMODB_PORT must be a TCP port number, got '$DYNAMODB_PORT'"
    [[ $DYNAMODB_PORT != "$PORT" ]] || die "PORT and DYNAMODB_PORT are both $PORT; choose different ports."
    command -v curl >/dev/null 2>&1 || die "curl not found (used to check that DynamoDB Local is up). Install curl."
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        die "Node.js and npm not found. Install Node.js 20+ with npm (they install DynamoDB Local)."
    fi
    node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if ((node_major < 20)); then
        echo "run: warning: Node.js $(node --version 2>/dev/null) found; Node.js 20+ is expected." >&2
    fi
    ddb_check_java || exit 1
    if ddb_port_in_use "$DYNAMODB_PORT"; then
        die "port $DYNAMODB_PORT (DYNAMODB_PORT) is already in use; e.g. DYNAMODB_PORT=8001 make run," \
            "or point DYNAMODB_ENDPOINT at a running DynamoDB."
    fi
fi
if ddb_port_in_use "$PORT"; then
    die "port $PORT (PORT) is already in use; e.g. PORT=3001 make run"
fi

if [[ -z ${DYNAMODB_ENDPOINT:-} ]]; then
    step "Node packages (DynamoDB Local)"
    ddb_ensure_installed
    echo "ok"
fi

# --- build ---------------------------------------------------------------------------
step "Building: cargo build -p devserver -p runner --bins"
cargo build -p devserver -p runner --bins
target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir == /* ]] || target_dir="$ROOT/$target_dir"
bin="$target_dir/debug"
for exe in devserver ssi-admin ssi-runner; do
    [[ -x $bin/$exe ]] || die "$bin/$exe was not built"
done

# --- DynamoDB ------------------------------------------------------------------------
if [[ -z ${DYNAMODB_ENDPOINT:-} ]]; then
    step "Starting DynamoDB Local on port $DYNAMODB_PORT"
    ddb_start "$DYNAMODB_PORT"
    export DYNAMODB_ENDPOINT="http://127.0.0.1:$DYNAMODB_PORT"
else
    step "Using DynamoDB at $DYNAMODB_ENDPOINT (DYNAMODB_ENDPOINT is set, DynamoDB Local not started)"
fi
# A local endpoint accepts any credentials; give the AWS SDK some so that it never
# looks elsewhere (profiles, instance metadata) for them.
if [[ -z ${AWS_ACCESS_KEY_ID:-} && -z ${AWS_PROFILE:-} ]]; then
    export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
fi
export AWS_EC2_METADATA_DISABLED=${AWS_EC2_METADATA_DISABLED:-true}

# --- JWT signing key -----------------------------------------------------------------
random_hex64() {
    if command -v openssl >/dev/null 2>&1; then
        openssl rand -hex 32
    else
        od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
    fi
}
if [[ -z ${JWT_SECRET:-} && -z ${JWT_SECRET_FILE:-} ]]; then
    secret_file="$ROOT/.local/jwt-secret"
    if [[ ! -s $secret_file ]]; then
        mkdir -p "$ROOT/.local"
        secret=$(random_hex64)
        [[ $secret =~ ^[0-9a-f]{64}$ ]] || die "could not generate a random JWT secret"
        tmp=$(mktemp "$ROOT/.local/jwt-secret.XXXXXX") # mode 0600
        printf '%s' "$secret" >"$tmp"
        # ln refuses to replace an existing file: a copy started at the same time wins.
        ln "$tmp" "$secret_file" 2>/dev/null || true
        rm -f "$tmp"
        unset secret
        echo "Created a local JWT signing key in .local/jwt-secret"
    fi
    chmod 600 "$secret_file"
    export JWT_SECRET_FILE="$secret_file"
fi

# --- table and first admin -----------------------------------------------------------
step "Creating table $TABLE_NAME from template.yaml (if missing)"
"$bin/ssi-admin" create-table --template template.yaml

if [[ -n ${ADMIN_EMAIL:-} && -n ${ADMIN_PASSWORD:-} ]]; then
    step "Creating admin $ADMIN_EMAIL"
    "$bin/ssi-admin" create-admin --email "$ADMIN_EMAIL"
elif [[ -n ${ADMIN_EMAIL:-} || -n ${ADMIN_PASSWORD:-} ]]; then
    echo "run: warning: set both ADMIN_EMAIL and ADMIN_PASSWORD to create an admin; none created." >&2
fi

# --- provisioning: engines, moto, runner ----------------------------------------------
step "Provisioning tools (Terraform, provider mirror, moto, engine packages)"
pt_install
step "Starting PostgreSQL, MariaDB, Redis and moto on free ports"
pt_start_postgres "$(pt_free_port)"
pt_start_mariadb "$(pt_free_port)"
pt_start_redis "$(pt_free_port)"
pt_start_moto "$(pt_free_port)"
# Notifications: a local SMTP sink (aiosmtpd, pinned in requirements-provision.txt)
# that saves each message as a file; its directory must not exist beforehand.
SMTP_PORT=$(pt_free_port)
MAIL_DIR="$ROOT/.local/mail/$(date -u +%Y%m%dT%H%M%SZ)-$$"
mkdir -p "$ROOT/.local/mail"
step "Mail sink on 127.0.0.1:$SMTP_PORT: each notification is a file in ${MAIL_DIR#"$ROOT"/}/new/"
"$VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$MAIL_DIR" &
MAIL_PID=$!
ln -sfn "$MAIL_DIR" "$ROOT/.local/mail/latest"
# The local configuration: webhooks may be http:// to loopback (never set in AWS).
export WEBHOOK_ALLOW_LOOPBACK=true
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}
step "Runner (ssi-runner worker): applies approved requests (state in .local/terraform/state) and sends notifications"
# In a subshell, so that only the runner gets the engines' admin connections.
(
    pt_env
    export TERRAFORM_BIN="$VENV/bin/terraform" TF_PLUGIN_DIR="$SSI_TF_PLUGIN_DIR" AWS_ENDPOINT_URL="$SSI_AWS_ENDPOINT"
    export SMTP_PORT
    exec "$bin/ssi-runner" worker
) &
RUNNER_PID=$!

# --- dev server ----------------------------------------------------------------------
# The API reads credentials with its own moto user, which may only decrypt.
pt_api_env
step "Dev server on http://127.0.0.1:$PORT (table $TABLE_NAME, DynamoDB $DYNAMODB_ENDPOINT). Ctrl-C stops everything."
# In the background plus `wait`, so that INT/TERM/HUP reach our traps at once.
"$bin/devserver" &
DEV_PID=$!
status=0
wait "$DEV_PID" || status=$?
DEV_PID=
exit "$status"
