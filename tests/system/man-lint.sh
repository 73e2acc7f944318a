#!/bin/bash
# The man page is clean for mandoc -Tlint: no warning, not even of style.
# Usage: man-lint.sh SOURCE_DIR
set -euo pipefail

src=$1
command -v mandoc >/dev/null || { echo "SKIP: no mandoc"; exit 77; }
mandoc -Tlint -Wstyle "$src/man/echod.8"
echo "mandoc -Tlint: man/echod.8 clean"
