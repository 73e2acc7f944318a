"""The package's life: built from the source tree, installed with dpkg -i
(the socket enabled and listening, the service waiting for its first client,
the opt-in UDP socket shipped but off, the units verified), purged at the end
(nothing left running, listening or on disk)."""

import glob
import os
import re
import shutil
import subprocess
import time

from e2e_lib import PORT, check, local_ports, log, port_listening, require, run, wait_for


def build_deb(source_dir, scratch, version=None):
    """dpkg-buildpackage in a copy of the tracked (and new, unignored) files,
    tests off: the package's build-time suites are not this test's job. With
    @version, the copy's debian/changelog gets an entry for it first: the same
    source, a higher version, for the upgrade."""
    where = os.path.join(scratch, "upgrade" if version else "source")
    copy = os.path.join(where, "echod")
    listed = subprocess.run(["git", "-C", source_dir, "ls-files", "-z", "--cached",
                             "--others", "--exclude-standard"],
                            capture_output=True, text=True)
    if listed.returncode == 0:
        for name in filter(None, listed.stdout.split("\0")):
            path = os.path.join(source_dir, name)
            if os.path.isfile(path):
                os.makedirs(os.path.dirname(os.path.join(copy, name)), exist_ok=True)
                shutil.copy2(path, os.path.join(copy, name))
    else:
        shutil.copytree(source_dir, copy, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", "build*", "obj-*"))
    if version:
        prepend_changelog_entry(os.path.join(copy, "debian", "changelog"), version)
    log(f"building the package{' ' + version if version else ''} "
        "(dpkg-buildpackage -us -uc -b, nocheck)...")
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck")
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=copy, env=env, timeout=600)
    debs = glob.glob(os.path.join(where, "echod_*.deb"))
    if len(debs) != 1:
        raise AssertionError(f"dpkg-buildpackage made {debs}, not one echod .deb")
    return debs[0]


def prepend_changelog_entry(path, version):
    """A new top entry in debian/changelog, in the maintainer's name, as dch
    would write it (without needing devscripts)."""
    with open(path) as f:
        old = f.read()
    maintainer = re.search(r"^ -- (.+?>)  ", old, re.MULTILINE).group(1)
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    with open(path, "w") as f:
        f.write(f"echod ({version}) unstable; urgency=medium\n\n"
                "  * End-to-end test: the same source under a higher version, to upgrade to.\n\n"
                f" -- {maintainer}  {date}\n\n{old}")


def check_installed(c):
    c.run("rm", "-f", "/usr/sbin/policy-rc.d")   # a Docker-style one blocks postinst
    c.run("dpkg", "-i", "/srv/echod-e2e/echod.deb", timeout=120)
    check(c.state("is-enabled", "echo.socket") == "enabled", "echo.socket is enabled")
    check(c.state("is-enabled", "echo.service") == "indirect",
          "echo.service is enabled only through the socket (indirect)")
    require(c.state("is-active", "echo.socket") == "active", "echo.socket is active")
    require(wait_for(port_listening, 5), f"port {PORT} is listening")
    check(c.state("is-active", "echo.service") == "inactive",
          "echo.service is not started until a client connects")
    listen = c.show("echo.socket", "Listen")["Listen"]
    check(listen == "[::]:7 (Stream)", "echo.socket listens on [::]:7, IPv4 and IPv6", listen)
    check(c.state("is-enabled", "echo-udp.socket") == "disabled"
          and c.state("is-active", "echo-udp.socket") == "inactive"
          and PORT not in local_ports("udp"),
          "echo-udp.socket is shipped but neither enabled nor started: UDP port 7 stays closed")
    verify = c.run("systemd-analyze", "verify", "echo.socket", "echo-udp.socket",
                   "echo.service", check_status=False)
    check(verify.returncode == 0 and not (verify.stdout + verify.stderr).strip(),
          "systemd-analyze verify is clean on the installed units",
          verify.stdout + verify.stderr)
    check(c.run("test", "-f", "/usr/share/man/man8/echod.8.gz", check_status=False)
          .returncode == 0, "man page installed")


def check_purge(c):
    c.run("dpkg", "--purge", "echod", timeout=120)
    check(c.run("pgrep", "-x", "echod", check_status=False).returncode == 1,
          "purge leaves no echod process")
    check(not port_listening() and PORT not in local_ports("udp"),
          f"port {PORT} is closed after purge, TCP and UDP")
    for path in ("/lib/systemd/system/echo.socket", "/lib/systemd/system/echo.service",
                 "/lib/systemd/system/echo-udp.socket",
                 "/etc/default/echod", "/etc/systemd/system/sockets.target.wants/echo.socket",
                 "/etc/systemd/system/sockets.target.wants/echo-udp.socket",
                 "/var/lib/systemd/deb-systemd-helper-enabled/echo.socket.dsh-also",
                 "/var/lib/systemd/deb-systemd-helper-enabled/echo-udp.socket.dsh-also"):
        check(c.run("test", "!", "-e", path, check_status=False).returncode == 0,
              f"purge removed {path}")
    for unit in ("echo.socket", "echo-udp.socket"):
        load = c.show(unit, "LoadState")["LoadState"]
        check(load == "not-found", f"systemd no longer knows {unit}", load)


# The checks, in the order they run: the installation first of all, the
# purge last of all (e2e.py).
INSTALL_CHECKS = [
    check_installed,
]
REMOVAL_CHECKS = [
    check_purge,
]
