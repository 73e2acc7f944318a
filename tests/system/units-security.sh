#!/bin/bash
# echo.service keeps its sandbox: systemd-analyze's exposure is at most 0.2
# (--threshold is in tenths; the command fails above it).
# Usage: units-security.sh SOURCE_DIR
set -euo pipefail

src=$1
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
# It makes /run/systemd if there is none, which a build user cannot in a
# chroot whose /run is root's and empty.
if [ ! -d /run/systemd ] && [ ! -w /run ]; then
        echo "SKIP: systemd-analyze needs /run/systemd, and this user cannot make it"
        exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$src/systemd/echo.service" "$tmp/"

status=0
systemd-analyze security --offline=yes --threshold=2 --no-pager "$tmp/echo.service" \
        >"$tmp/report" 2>&1 || status=$?
grep -v '^✓' "$tmp/report"
exit "$status"
