#!/usr/bin/env bash
# Dependency hygiene, part of `make test`:
#   - cargo deny check licenses bans sources (deny.toml: permissive licences only,
#     duplicate versions listed, crates.io only). `advisories` needs the RustSec
#     database from GitHub, which the build machine cannot reach: left to CI runs with
#     network access (cargo deny check advisories).
#   - cargo machete: no dependency that no code names (exceptions, with their reason,
#     under [package.metadata.cargo-machete] of the crate).
# Both tools are installed from the crate registry into .local/tools on first use
# (about 3.5 min on 2 cores; a no-op afterwards).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TOOLS="$ROOT/.local/tools"
DENY_VERSION=0.20.2
MACHETE_VERSION=0.9.2

install_tool() { # crate version binary
    if [[ -x "$TOOLS/bin/$3" ]] && "$TOOLS/bin/$3" --version 2>/dev/null | grep -q "$2"; then
        return
    fi
    echo "deps-check: installing $1 $2 into .local/tools (once)"
    cargo install --quiet --locked --root "$TOOLS" "$1" --version "$2"
}

install_tool cargo-deny "$DENY_VERSION" cargo-deny
install_tool cargo-machete "$MACHETE_VERSION" cargo-machete
"$TOOLS/bin/cargo-deny" --log-level error check licenses bans sources
"$TOOLS/bin/cargo-machete"
