#!/usr/bin/env bash
# `make bench`: performance figures, each printed beside its target as PASS or MISS
# (see docs/performance.md). Loopback only; bounded in time and count.
#
#   1. builds the release binaries (host architecture): the four functions exactly as
#      `cargo build --release --bin auth --bin teams --bin users --bin docs`, then the
#      dev server and the bench binaries (infra/bench). target/ is reused: a cold build
#      takes 20-30 minutes on 2 busy cores (the release profile is LTO fat).
#   2. micro-bench: JWT, argon2id, cursors, serde_dynamo items (before DynamoDB Local
#      starts, so it has the CPU to itself).
#   3. DynamoDB Local on a free port (scripts/dynamodb-local.sh), stopped on exit.
#   4. lambda-bench: each function binary under an emulated Lambda Runtime API, with a
#      timing proxy in front of DynamoDB Local.
#   5. load-bench: the dev server (target/release/devserver, started here on a free
#      port): its peak RSS after 250 logins, then 64 concurrent connections.
#   6. deployment zip sizes from `make build` (target/lambda/*/bootstrap.zip) when they
#      exist; BENCH_BUILD_ZIPS=1 runs `make build` first (~15 min cold).
#
# Knobs (environment): BENCH_INVOCATIONS (1000), BENCH_COLD_STARTS (10),
# BENCH_SCENARIO_MAX_SECS (180), BENCH_CONNECTIONS (64), BENCH_LOAD_SECS (10),
# BENCH_LOAD_REQUESTS (20000), BENCH_TEAMS (30), BENCH_MEMBERS (20), BENCH_WARMUP (100),
# BENCH_LOAD_ROUNDS (3), BENCH_LOGINS (250), BENCH_LOGIN_CONNECTIONS (8),
# BENCH_ONLY (routes whose key contains this), BENCH_FUNCTION_ENV (extra NAME=value
# pairs for the function processes, e.g. LD_PRELOAD=<an allocator>), BENCH_BUILD_ZIPS.
# Every section prints `uptime` (the machine's load) before and after it, and its
# wall time. The whole output is also written to .local/bench/bench-<UTC time>.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/dynamodb-local.sh
. "$ROOT/scripts/dynamodb-local.sh"
# shellcheck source=scripts/provision-tools.sh
. "$ROOT/scripts/provision-tools.sh"

die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}
# A section's header, preceded by the end of the previous one: `uptime` before and
# after each, so that a re-run can be compared under the load it met.
SECTION=
SECTION_STARTED=
section_end() {
    [[ -n $SECTION ]] || return 0
    echo "-- end of '$SECTION' after $((SECONDS - SECTION_STARTED)) s; uptime after: $(uptime)"
    SECTION=
}
section() {
    section_end
    printf '\n======== %s ========\n' "$*"
    echo "-- uptime before: $(uptime)"
    SECTION=$*
    SECTION_STARTED=$SECONDS
}

DEVSERVER_PID=
cleanup() {
    if [[ -n $DEVSERVER_PID ]]; then
        kill -TERM "$DEVSERVER_PID" 2>/dev/null || true
        wait "$DEVSERVER_PID" 2>/dev/null || true
        DEVSERVER_PID=
    fi
    pt_stop_all
    ddb_stop
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust with rustup)"
command -v curl >/dev/null 2>&1 || die "curl not found"
ddb_check_java || exit 1
ddb_ensure_installed

mkdir -p .local/bench
LOG_DIR="$ROOT/.local/bench"
REPORT="$LOG_DIR/bench-$(date -u +%Y%m%dT%H%M%SZ).txt"
# Everything printed from here on also goes to the report file.
exec > >(tee "$REPORT") 2>&1

section "Machine"
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores; RAM $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "os: $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"'), kernel $(uname -r), $(uname -m)"
echo "$(rustc --version); $("$(ddb_java)" -version 2>&1 | head -n 1); DynamoDB Local $(basename "$(ddb_dir)")"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
echo "other work on the machine skews the figures: compare a re-run under a similar load (uptime, printed per section)"

section "Build (release, $(uname -m))"
cargo build --release --bin auth --bin teams --bin users --bin docs
cargo build --release --bin devserver --bin lambda-bench --bin load-bench --bin micro-bench --bin provision-bench --bin audit-bench
BIN="$ROOT/target/release"

section "Micro-benchmarks"
timeout 600 "$BIN/micro-bench"

section "DynamoDB Local"
port=$(ddb_free_port)
ddb_start "$port"
export DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
unset AWS_SESSION_TOKEN AWS_PROFILE JWT_SECRET_ARN JWT_SECRET_FILE

section "Audit log: cost per audited action (DynamoDB Local)"
uptime
timeout 600 "$BIN/audit-bench"
uptime

section "Lambda functions"
BENCH_BIN_DIR="$BIN" BENCH_LOG_DIR="$LOG_DIR" timeout 1800 "$BIN/lambda-bench"

section "Dev server under load"
devserver_port=$(ddb_free_port)
JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
TABLE_NAME="bench-load-$(date +%s)-$RANDOM"
export JWT_SECRET TABLE_NAME
PORT=$devserver_port RUST_LOG=warn "$BIN/devserver" >"$LOG_DIR/devserver.log" 2>&1 &
DEVSERVER_PID=$!
for ((i = 0; i < 100; i++)); do
    curl -sf --max-time 1 "http://127.0.0.1:$devserver_port/health" >/dev/null && break
    kill -0 "$DEVSERVER_PID" 2>/dev/null || {
        cat "$LOG_DIR/devserver.log" >&2
        die "the dev server exited during startup"
    }
    sleep 0.1
done
curl -sf --max-time 1 "http://127.0.0.1:$devserver_port/health" >/dev/null ||
    die "the dev server does not answer on port $devserver_port"
BENCH_DEVSERVER="127.0.0.1:$devserver_port" BENCH_DEVSERVER_PID=$DEVSERVER_PID timeout 600 "$BIN/load-bench"
kill -TERM "$DEVSERVER_PID" 2>/dev/null || true
wait "$DEVSERVER_PID" 2>/dev/null || true
DEVSERVER_PID=

section "Provisioning: approval to ready, local postgres (real Terraform)"
pt_install
pt_start_postgres "$(pt_free_port)"
pt_start_moto "$(pt_free_port)" # the credentials key (KMS)
(
    pt_env
    export TERRAFORM_BIN="$VENV/bin/terraform" TF_PLUGIN_DIR="$SSI_TF_PLUGIN_DIR"
    timeout 900 "$BIN/provision-bench"
)
pt_stop_all
ddb_stop

section "Deployment zips (arm64, make build)"
if [[ ${BENCH_BUILD_ZIPS:-} == 1 ]]; then
    bash scripts/build.sh
fi
zip_limit=6000000 # 6 MB, decimal (the stricter reading); keep in step with infra/bench/src/targets.rs
zips=0
for zip in target/lambda/*/bootstrap.zip; do
    [[ -f $zip ]] || continue
    zips=$((zips + 1))
    f=$(basename "$(dirname "$zip")")
    binary_bytes=$(python3 -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo("bootstrap").file_size)' "$zip")
    zip_bytes=$(stat -c %s "$zip")
    verdict=PASS
    ((zip_bytes <= zip_limit)) || verdict=MISS
    printf '  [%s] %-8s zip %11s B  (binary %11s B, built %s)   target <= %s B\n' \
        "$verdict" "$f" "$zip_bytes" "$binary_bytes" "$(date -u -r "$zip" +%Y-%m-%dT%H:%MZ)" "$zip_limit"
    if [[ Cargo.lock -nt $zip || Cargo.toml -nt $zip ]]; then
        echo "         (older than Cargo.toml/Cargo.lock: may predate the current dependencies; BENCH_BUILD_ZIPS=1 make bench rebuilds)"
    fi
done
if ((zips == 0)); then
    echo "  no zips under target/lambda/: run 'make build' (arm64, ~15 min cold) or 'BENCH_BUILD_ZIPS=1 make bench'"
fi

section_end
echo
echo "bench: done after $SECONDS s; report saved to ${REPORT#"$ROOT"/}"
