# shellcheck shell=bash
# Sourced by the scripts that need Python tools. `venv_ensure FILE` creates ./.venv on
# first use and installs the pinned tools of FILE (a requirements file) whenever FILE
# changes; afterwards the tools are in "$VENV/bin".

VENV="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv"

venv_ensure() {
    local requirements="$1" python="${PYTHON:-python3}"
    local stamp="$VENV/.$(basename "$requirements").sha256"
    local want have=""
    want="$(sha256sum "$requirements" | cut -d' ' -f1)"
    [[ -f "$stamp" ]] && have="$(cat "$stamp")"
    if [[ ! -x "$VENV/bin/python" ]]; then
        echo "venv: creating $VENV" >&2
        "$python" -m venv "$VENV"
    fi
    if [[ "$want" != "$have" ]]; then
        echo "venv: installing $(basename "$requirements") into $VENV" >&2
        rm -f "$stamp"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
        echo "$want" >"$stamp"
    fi
}
