#!/usr/bin/env python3
"""End to end: the echod package in a real systemd.

Boots systemd with systemd-nspawn over an overlay of / (the host stays
untouched), installs the .deb with dpkg -i inside, and checks from the host
what a user would see: the socket enabled and listening, echoes right, the
service's STATUS, the sandbox, journal fields and catalog, restarts without a
refused client, live connections kept through restarts by the fd store, 1024
children at once, stop, the shipped opt-in echo-udp.socket (enabled as
echod(8) says, its reflection guard), upgrade (to the same version, then to a
higher one with live connections and new ones arriving) and purge. The
container shares the host's network, so port 7 (TCP and UDP) must be free on
the host.

The checks live in e2e_<concern>.py, each module listing its own in CHECKS,
in order; the shared helpers (the Container, clients, check() and require())
in e2e_lib.py. To add a check: write `def check_something(c):` in the module
of its concern and put it in that module's CHECKS where it belongs. CHECKS
below says in which order the modules run, in one container.

Usage: [ECHOD_RELEASE=trixie] e2e.py SOURCE_DIR
On the host's Debian release, the container is an overlay of /; on another
($ECHOD_RELEASE), of a root debootstrapped and cached by debian-root, whose
own toolchain, lintian and systemd-nspawn build, check and boot the package
(in-root). The package is $ECHOD_DEB, or built from SOURCE_DIR
(dpkg-buildpackage, tests off, lintian clean) when that is unset. The package
upgraded to is always built from SOURCE_DIR, with version UPGRADE_VERSION:
with $ECHOD_DEB naming an older release, the test upgrades from that release
to this tree. Exit status: 0
pass, 1 fail, 77 skip (not root, no systemd-nspawn, port 7 busy, ...).
"""

import os
import resource
import shutil
import sys
import tempfile
import time

import e2e_activation
import e2e_journal
import e2e_packaging
import e2e_restarts
import e2e_udp
import e2e_upgrades
from e2e_lib import (
    FAILURES, PORT, SKIP, Container, local_ports, log, port_listening, release_under_test,
    unwind_on_signals)
from e2e_packaging import packages

# Every check, in the order a user meets them. The order matters where one
# module leaves what the next finds: e2e_journal turns debug logging on in
# /etc/default/echod, e2e_udp leaves echo-udp.socket enabled, and
# e2e_upgrades checks that an upgrade keeps both.
CHECKS = [
    *e2e_packaging.INSTALL_CHECKS,
    *e2e_activation.CHECKS,
    *e2e_journal.CHECKS,
    *e2e_restarts.CHECKS,
    *e2e_udp.CHECKS,
    *e2e_upgrades.CHECKS,
    *e2e_packaging.REMOVAL_CHECKS,
]


def reason_not_to_run():
    if os.geteuid() != 0:
        return "needs root (overlay mount, systemd-nspawn)"
    for tool, package in (("systemd-nspawn", "systemd-container"), ("nsenter", "util-linux"),
                          ("pgrep", "procps"), ("dpkg", "dpkg")):
        if not shutil.which(tool):
            return f"no {tool} (apt-get install {package})"
    if port_listening() or PORT in local_ports("udp"):
        return f"port {PORT} is already in use on this host, and the container shares its network"
    return None


def main(argv):
    source_dir = os.path.abspath(argv[1] if len(argv) > 1 else
                                 os.path.join(os.path.dirname(__file__), "..", ".."))
    reason = reason_not_to_run()
    if reason:
        log(f"SKIP: {reason}")
        return SKIP

    unwind_on_signals()

    # Up to 1024 connections at once, and a few more sockets (e2e_activation,
    # e2e_restarts).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))

    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="echod-e2e.")
    release = release_under_test()
    container = Container(scratch, source_dir, release)
    try:
        release.prepare()
        deb, upgrade_deb = packages(release, source_dir, scratch)
        deb = os.environ.get("ECHOD_DEB") or deb
        log(f"Debian {release.name}: package {deb}, upgraded to {upgrade_deb}")
        container.mount()
        os.makedirs(os.path.join(container.root, "srv", "echod-e2e"))
        shutil.copy(deb, os.path.join(container.root, "srv", "echod-e2e", "echod.deb"))
        shutil.copy(upgrade_deb,
                    os.path.join(container.root, "srv", "echod-e2e", "echod-upgrade.deb"))
        container.boot()
        try:
            for each in selected(CHECKS):
                each(container)
            if FAILURES:
                raise AssertionError(f"{len(FAILURES)} checks failed:\n  " + "\n  ".join(FAILURES))
        except AssertionError:
            if container.leader:
                log("--- journalctl -u echo.service -u echo.socket -p info (last 40 lines)")
                dump = container.run("journalctl", "--no-pager", "-n", "40", "-p", "info",
                                     "-u", "echo.service", "-u", "echo.socket",
                                     check_status=False)
                log(dump.stdout + dump.stderr)
            raise
    except AssertionError as e:
        log(f"not ok - {e}")
        return 1
    finally:
        container.close()
        shutil.rmtree(scratch, ignore_errors=True)
    log(f"pass: end-to-end on Debian {release.name} in {time.monotonic() - started:.0f} s")
    return 0


def selected(checks):
    """@checks, or, when $ECHOD_E2E_ONLY names some (a comma-separated list, for
    a quicker look at one), the install checks and those."""
    only = [x for x in os.environ.get("ECHOD_E2E_ONLY", "").split(",") if x]
    if not only:
        return checks
    return [*e2e_packaging.INSTALL_CHECKS, *(c for c in checks if c.__name__ in only)]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
