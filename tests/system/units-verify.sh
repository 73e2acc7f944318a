#!/bin/bash
# systemd-analyze verify finds nothing to say about the units. It checks that
# ExecStart= is executable, so it verifies a copy of echo.service that runs
# the binary just built; the e2e test verifies the installed units as they are.
# Usage: units-verify.sh SOURCE_DIR BUILT_ECHOD
set -euo pipefail

src=$1
echod=$(readlink -f "$2")    # meson passes it relative to the build directory
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
# It makes /run/systemd if there is none, which a build user cannot in a
# chroot whose /run is root's and empty.
if [ ! -d /run/systemd ] && [ ! -w /run ]; then
        echo "SKIP: systemd-analyze needs /run/systemd, and this user cannot make it"
        exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck disable=SC2016 # the literal line, with $ECHOD_OPTS unexpanded
grep -qx 'ExecStart=/usr/sbin/echod $ECHOD_OPTS' "$src/systemd/echo.service" || {
        echo 'echo.service: ExecStart= is not "/usr/sbin/echod $ECHOD_OPTS"'
        exit 1
}
cp "$src/systemd/echo.socket" "$src/systemd/echo-udp.socket" "$tmp/"
sed "s|^ExecStart=/usr/sbin/echod |ExecStart=$echod |" "$src/systemd/echo.service" \
        >"$tmp/echo.service"

# verify prints its findings and exits non-zero on errors; warnings only
# print, so any output at all is a failure.
out=$(systemd-analyze verify --man=no "$tmp/echo.socket" "$tmp/echo-udp.socket" \
        "$tmp/echo.service" 2>&1) || {
        printf '%s\n' "$out"
        exit 1
}
if [ -n "$out" ]; then
        printf '%s\n' "$out"
        exit 1
fi
echo "systemd-analyze verify: echo.socket, echo-udp.socket, echo.service clean"
