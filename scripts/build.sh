#!/usr/bin/env bash
# `make build`: builds every Lambda function for AWS (provided.al2023, arm64) with
# cargo-lambda, as zips under target/lambda/<function>/, and prints each one's size.
# cargo-lambda (with zig, the cross-linker) comes from PyPI into ./.venv; the Rust
# standard library for aarch64 is added through rustup.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
# shellcheck source=scripts/venv.sh
. "$repo_root/scripts/venv.sh"
venv_ensure "$repo_root/requirements-build.txt"
export PATH="$VENV/bin:$PATH"

target=aarch64-unknown-linux-gnu
if ! rustup target list --installed | grep -qx "$target"; then
    echo "build: rustup target add $target" >&2
    rustup target add "$target"
fi

mapfile -t functions < <(bash scripts/functions.sh | cut -d' ' -f1)
binaries=()
for f in "${functions[@]}"; do binaries+=(--bin "$f"); done

echo "build: cargo lambda build --release --arm64 --output-format zip ${binaries[*]}" >&2
cargo lambda build --release --arm64 --output-format zip "${binaries[@]}"

# The zip keeps the binary; unpack a copy to report the binary's size too.
printf '\n%-8s %12s %12s\n' function binary zip
for f in "${functions[@]}"; do
    zip="target/lambda/$f/bootstrap.zip"
    binary_bytes=$(python3 -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo("bootstrap").file_size)' "$zip")
    zip_bytes=$(stat -c %s "$zip")
    printf '%-8s %12s %12s\n' "$f" "$binary_bytes" "$zip_bytes"
done
