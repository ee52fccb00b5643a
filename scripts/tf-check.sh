#!/usr/bin/env bash
# Static checks of the Terraform modules (infra/terraform/modules), offline:
#   1. terraform fmt -check -recursive infra/terraform
#   2. scripts/tf_interface_check.py: each module's variables are exactly the catalog
#      parameters of its type (same names, types, defaults) plus the context variables,
#      its outputs exactly the contract's, and it has no provider or backend block
#   3. for every module whose providers are in the offline mirror (every one but
#      k8s_namespace/aws, which needs the kubernetes provider): terraform init
#      -backend=false -plugin-dir=.local/terraform/plugins and terraform validate, in a
#      temporary copy, so no .terraform directory or lock file is left in the repository.
# Installs what it needs first (scripts/provision-tools.sh install). Exit status 0 when
# everything passes; one line per module.
#
#   bash scripts/tf-check.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/provision-tools.sh
. "$ROOT/scripts/provision-tools.sh"

# Modules that are only format-checked, with the reason.
declare -A FMT_ONLY=(
    [k8s_namespace/aws]="needs the kubernetes provider, which is not in the offline mirror"
)

work=
cleanup() { [[ -z $work ]] || rm -rf "$work"; }
trap cleanup EXIT

pt_install
pt_env
work=$(mktemp -d)

failed=0
echo "== terraform fmt -check -recursive infra/terraform"
if terraform fmt -check -recursive -diff infra/terraform; then
    echo "ok   fmt"
else
    echo "FAIL fmt (run: .venv/bin/terraform fmt -recursive infra/terraform)"
    failed=1
fi

echo "== interface: variables = catalog parameters + context, outputs = contract"
"$VENV/bin/python" "$ROOT/scripts/tf_interface_check.py" "$ROOT" || failed=1

echo "== terraform init + validate (offline, temporary copies)"
for dir in infra/terraform/modules/*/*/; do
    dir=${dir%/}
    module=${dir#infra/terraform/modules/}
    if [[ -n ${FMT_ONLY[$module]:-} ]]; then
        echo "skip $module: fmt only (${FMT_ONLY[$module]})"
        continue
    fi
    copy="$work/${module//\//-}"
    mkdir -p "$copy"
    cp -R "$dir/." "$copy/"
    log="$copy.log"
    if (cd "$copy" && terraform init -input=false -backend=false -plugin-dir="$SSI_TF_PLUGIN_DIR" -no-color &&
        terraform validate -no-color) >"$log" 2>&1; then
        echo "ok   $module"
    else
        echo "FAIL $module"
        sed 's/^/     /' "$log"
        failed=1
    fi
done

if ((failed)); then
    echo "tf-check: FAILED"
    exit 1
fi
echo "tf-check: all passed"
