#!/usr/bin/env bash
# Validate template.yaml offline: SAM transform + cfn-lint (no AWS account,
# no credentials, no Docker).
#
# Creates ./.venv with the pinned tools from requirements-dev.txt on first use
# and reinstalls them whenever requirements-dev.txt changes.
#
# Usage: scripts/validate-template.sh [TEMPLATE]   (default: template.yaml)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

template="${1:-template.yaml}"
venv="$repo_root/.venv"
requirements="$repo_root/requirements-dev.txt"
stamp="$venv/.requirements-dev.sha256"

python="${PYTHON:-python3}"

want_hash="$(sha256sum "$requirements" | cut -d' ' -f1)"
have_hash=""
if [[ -f "$stamp" ]]; then
    have_hash="$(cat "$stamp")"
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "validate-template: creating $venv" >&2
    "$python" -m venv "$venv"
fi

if [[ "$want_hash" != "$have_hash" || ! -x "$venv/bin/sam" || ! -x "$venv/bin/cfn-lint" ]]; then
    echo "validate-template: installing requirements-dev.txt into $venv" >&2
    rm -f "$stamp"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$want_hash" >"$stamp"
fi

# Offline: no telemetry, no update check, a dummy region, and no credentials
# lookups that could hang on an instance metadata endpoint.
export SAM_CLI_TELEMETRY=0
export SAM_CLI_DISABLE_UPDATE_CHECK=1 # harmless where unsupported
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_REGION="${AWS_REGION:-$AWS_DEFAULT_REGION}"
export AWS_EC2_METADATA_DISABLED=true

echo "validate-template: sam validate --lint --template $template" >&2
"$venv/bin/sam" validate --lint --template "$template"

echo "validate-template: cfn-lint $template" >&2
"$venv/bin/cfn-lint" -- "$template"

echo "validate-template: OK" >&2
