#!/usr/bin/env bash
# `make test`: everything CI checks, in order, stopping at the first failure:
#   1. cargo fmt --all -- --check
#   2. cargo clippy --workspace --all-targets -- -D warnings
#   3. scripts/lint-infra.sh (lints template.yaml and the GitHub workflows)
#   4. scripts/tf-check.sh (terraform fmt -check, validate, module interfaces)
#   5. scripts/deps-check.sh (cargo deny: licences, duplicate versions, sources;
#      cargo machete: unused dependencies; both installed into .local/tools once)
#   6. cargo test --workspace, with DynamoDB Local, PostgreSQL, MariaDB, Redis and moto
#      started on free ports chosen by the OS and their settings exported (the tests
#      create their own tables, databases, buckets and state directories).
# Terraform, the offline provider mirror, moto and the engine packages are installed
# first (scripts/provision-tools.sh; a no-op once done). Everything started here is
# stopped on exit, whatever happens.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/dynamodb-local.sh
. "$ROOT/scripts/dynamodb-local.sh"
# shellcheck source=scripts/provision-tools.sh
. "$ROOT/scripts/provision-tools.sh"

section() { printf '\n======== %s ========\n' "$*"; }
die() {
    printf 'test: error: %s\n' "$*" >&2
    exit 1
}

# shellcheck disable=SC2317 # invoked by the trap below
stop_services() {
    pt_stop_all
    ddb_stop
}
trap stop_services EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Fail fast on missing tools, before the long compile steps.
section "Prerequisites"
command -v cargo >/dev/null 2>&1 ||
    die "cargo not found. Install Rust stable with rustup, then open a new shell (or 'source ~/.cargo/env')."
cargo fmt --version >/dev/null 2>&1 || die "rustfmt missing: rustup component add rustfmt"
cargo clippy --version >/dev/null 2>&1 || die "clippy missing: rustup component add clippy"
command -v curl >/dev/null 2>&1 || die "curl not found (used to check that DynamoDB Local is up). Install curl."
ddb_check_java || exit 1
ddb_ensure_installed
echo "ok: $(cargo --version), $("$(ddb_java)" -version 2>&1 | sed -n 1p), DynamoDB Local $(basename "$(ddb_dir)")"

section "Provisioning tools (Terraform, provider mirror, moto, engines)"
pt_install
echo "ok"

section "cargo fmt --all -- --check"
cargo fmt --all -- --check
echo "ok"

section "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

section "scripts/lint-infra.sh (template.yaml, workflows)"
bash scripts/lint-infra.sh

section "scripts/tf-check.sh (Terraform modules)"
bash scripts/tf-check.sh

section "scripts/deps-check.sh (cargo deny: licences, duplicates, sources; cargo machete: unused dependencies)"
bash scripts/deps-check.sh
echo "ok"

# Compile first, so that DynamoDB Local does not sit idle through the build.
section "cargo test --workspace --no-run (build)"
cargo test --workspace --no-run

section "DynamoDB Local"
port=$(ddb_free_port)
ddb_start "$port"
export DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
export AWS_REGION=${AWS_REGION:-us-east-1}
# DynamoDB Local accepts any credentials; give the AWS SDK some so that it never looks
# elsewhere (profiles, instance metadata) for them.
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
unset AWS_SESSION_TOKEN AWS_PROFILE
export AWS_EC2_METADATA_DISABLED=true
echo "DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT"

section "PostgreSQL, MariaDB, Redis, moto (for the provisioning tests)"
pt_start_postgres "$(pt_free_port)"
pt_start_mariadb "$(pt_free_port)"
pt_start_redis "$(pt_free_port)"
pt_start_moto "$(pt_free_port)"
# The engines' admin connections and moto's admin key, as the runner passes them to
# Terraform; plus where Terraform and its provider mirror are.
pt_env
# The test apps open credentials as the API's decrypt-only moto user (as in make run);
# the runners in the tests seal them with the admin key of AWS_ACCESS_KEY_ID.
pt_api_env
export TERRAFORM_BIN="$VENV/bin/terraform" TF_PLUGIN_DIR="$SSI_TF_PLUGIN_DIR" AWS_ENDPOINT_URL="$SSI_AWS_ENDPOINT"

section "cargo test --workspace"
results=$(mktemp)
status=0
cargo test --workspace --no-fail-fast 2>&1 | tee "$results" || status=$?

# One closing line summing every test binary's "test result:" line.
awk '/^test result:/ {
        for (i = 2; i <= NF; i++) {
            key = $i
            sub(/;$/, "", key)
            if (key == "passed" || key == "failed" || key == "ignored") { n[key] += $(i - 1) }
        }
    }
    END { printf "\nsummary: %d passed, %d failed, %d skipped\n", n["passed"], n["failed"], n["ignored"] }' "$results"
rm -f "$results"
if ((status == 0)); then
    ddb_stop
    rm -f "$ROOT/.local/dynamodb-$port.log"
else
    echo "cargo test failed (exit $status); DynamoDB Local log: .local/dynamodb-$port.log" >&2
fi
exit "$status"
