#!/usr/bin/env bash
# Prints "<binary> <logical id>" for every Lambda function in template.yaml, so the
# build and the deploy take the list of functions from one place.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
awk '/^  [A-Za-z0-9]+:$/ { logical = substr($1, 1, length($1) - 1) }
     /^        Binary: / { print $2, logical }' template.yaml
