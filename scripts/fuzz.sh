#!/usr/bin/env bash
# `make fuzz`: Schemathesis against a local stack of its own, as admins, bounded in time.
#
# 1. installs the pinned fuzzer (requirements-fuzz.txt) into .venv and builds the dev
#    server and ssi-admin;
# 2. starts DynamoDB Local and the dev server on free ports and creates a fresh
#    table; the JWT key is generated into a mode-0600 temporary file;
# 3. runs `st run` on /openapi.json with the checks below, each stage as an admin of
#    its own (ssi-admin create-admin, with a generated password passed by env): the
#    examples, coverage and fuzzing phases for at most FUZZ_MAX_TIME seconds (default
#    150) without the two operations that end the admin's session (logout, password
#    change); the stateful phase (45 s) without those and without the routes that
#    could delete or demote the admin; then short runs of password change and logout;
# 4. stops everything it started, by PID, whatever happens.
# Exit status: non-zero when Schemathesis reports a failure. Reports (JUnit, and the
# logs of the dev server) are left in .local/fuzz/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/dynamodb-local.sh
. "$ROOT/scripts/dynamodb-local.sh"
# shellcheck source=scripts/venv.sh
. "$ROOT/scripts/venv.sh"

CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection,ignored_auth,unsupported_method
MAX_TIME=${FUZZ_MAX_TIME:-150}
WORKERS=${FUZZ_WORKERS:-2}
OUT="$ROOT/.local/fuzz"

die() {
    printf 'fuzz: error: %s\n' "$*" >&2
    exit 1
}
step() { printf '\n==> %s\n' "$*"; }

DEV_PID=
SECRET_DIR=
# shellcheck disable=SC2317 # invoked by the traps below
cleanup() {
    if [[ -n $DEV_PID ]]; then
        ddb_kill_wait "$DEV_PID" 10
        DEV_PID=
    fi
    ddb_stop
    [[ -n $SECRET_DIR ]] && rm -rf "$SECRET_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

step "Installing the fuzzer (requirements-fuzz.txt) and building the dev server"
venv_ensure "$ROOT/requirements-fuzz.txt"
cargo build -p devserver --bins
bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
[[ $bin == /* ]] || bin="$ROOT/$bin"
mkdir -p "$OUT"

step "Starting DynamoDB Local and the dev server on free ports"
ddb_port=$(ddb_free_port)
ddb_start "$ddb_port"
export DYNAMODB_ENDPOINT="http://127.0.0.1:$ddb_port"
export AWS_REGION=${AWS_REGION:-us-east-1} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
export AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE
export TABLE_NAME="fuzz-$(random_hex 4)"
SECRET_DIR=$(mktemp -d)
(umask 077 && random_hex 32 >"$SECRET_DIR/jwt-secret")
export JWT_SECRET_FILE="$SECRET_DIR/jwt-secret"
unset JWT_SECRET JWT_SECRET_ARN

"$bin/ssi-admin" create-table --template template.yaml
# Generated, passed by environment only, never printed.
ADMIN_PASSWORD="fuzz $(random_hex 12) admin"
export ADMIN_PASSWORD

port=$(ddb_free_port)
PORT=$port RUST_LOG=${RUST_LOG:-warn} "$bin/devserver" >"$OUT/devserver.log" 2>&1 &
DEV_PID=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -fs "$base/health" >/dev/null 2>&1 && break
    ddb__alive "$DEV_PID" || die "the dev server exited; see $OUT/devserver.log"
    sleep 0.1
done
curl -fs "$base/health" >/dev/null || die "the dev server did not come up on $base"

# Creates a fresh admin (each stage has its own, so that what one stage does to its
# admin, e.g. wrong current passwords that the login throttle counts, cannot spill
# into the next) and prints an access token for it. On failure, says why (the
# problem document; it never contains the password).
token() {
    local admin_email body answer code
    admin_email="fuzz-admin-$(random_hex 4)@example.com"
    "$bin/ssi-admin" create-admin --email "$admin_email" >/dev/null || return 1
    body=$(python3 -c 'import json, os, sys; print(json.dumps({"email": sys.argv[1], "password": os.environ["ADMIN_PASSWORD"]}))' "$admin_email")
    answer=$(curl -s -w '\n%{http_code}' -H 'content-type: application/json' -d "$body" "$base/api/v1/auth/login") || return 1
    code=${answer##*$'\n'}
    answer=${answer%$'\n'*}
    if [[ $code != 200 ]]; then
        printf 'fuzz: login of the fuzz admin answered %s: %s\n' "$code" "$answer" >&2
        return 1
    fi
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])' <<<"$answer"
}

status=0
common=(--url "$base" --checks "$CHECKS" --workers "$WORKERS" --request-timeout 15
    --generation-database none --no-color --suppress-health-check too_slow,filter_too_much)

# The stateful phase follows links between responses (e.g. the id from
# GET /auth/me into DELETE /users/{id}), so it could delete or demote the fuzz admin
# itself; it runs without the routes that do that to a user.
step "Schemathesis: examples, coverage and fuzzing of every operation but logout and password change (at most ${MAX_TIME} s)"
TOKEN=$(token) || die "could not create and sign in a fuzz admin"
timeout --signal=INT $((MAX_TIME + 60)) "$VENV/bin/st" --config-file "$ROOT/scripts/schemathesis.toml" run "$base/openapi.json" "${common[@]}" \
    --phases examples,coverage,fuzzing --max-time "$MAX_TIME" \
    --exclude-path /api/v1/auth/logout --exclude-path /api/v1/users/me/password \
    --report junit --report-junit-path "$OUT/main.xml" \
    -H "Authorization: Bearer $TOKEN" || status=$?

step "Schemathesis: stateful, without logout, password change and PATCH/DELETE /users/{id}"
TOKEN=$(token) || die "could not create and sign in a fuzz admin"
timeout --signal=INT 120 "$VENV/bin/st" --config-file "$ROOT/scripts/schemathesis.toml" run "$base/openapi.json" "${common[@]}" \
    --phases stateful --max-time 45 \
    --exclude-path /api/v1/auth/logout --exclude-path /api/v1/users/me/password \
    --exclude-path '/api/v1/users/{id}' \
    --report junit --report-junit-path "$OUT/stateful.xml" \
    -H "Authorization: Bearer $TOKEN" || status=$?

# Password change before logout: a logout revokes the token the other one would use.
for route in /api/v1/users/me/password /api/v1/auth/logout; do
    step "Schemathesis: $route (ends the admin's session)"
    TOKEN=$(token) || die "could not create and sign in a fuzz admin"
    timeout --signal=INT 90 "$VENV/bin/st" --config-file "$ROOT/scripts/schemathesis.toml" run "$base/openapi.json" "${common[@]}" \
        --phases examples,coverage,fuzzing --max-time 20 --max-examples 30 \
        --include-path "$route" \
        --report junit --report-junit-path "$OUT/session-$(basename "$route").xml" \
        -H "Authorization: Bearer $TOKEN" || status=$?
done

if ((status == 0)); then
    echo "fuzz: no failures"
else
    echo "fuzz: Schemathesis reported failures (exit $status); reports in ${OUT#"$ROOT"/}/" >&2
fi
exit "$status"
