"""The package's life: built from the source tree, installed with dpkg -i
(the socket enabled and listening, the service waiting for its first client,
the opt-in UDP socket shipped but off, the units verified), purged at the end
(nothing left running, listening or on disk)."""

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time

from e2e_lib import (
    PORT, UPGRADE_VERSION, check, local_ports, log, port_listening, require, wait_for)


def packages(release, source_dir, scratch):
    """The package built from @source_dir on @release, and the same source
    under UPGRADE_VERSION, for the upgrade: (deb, upgrade_deb). lintian, of
    that release, must find no error and no warning in the first. Built once
    per release and source tree when $ECHOD_BUILD_DIR is set (meson test sets
    it): the end-to-end, DEP-8 and VM tests share them."""
    key = f"{release.name}-{tree_hash(source_dir)}"
    cache = os.environ.get("ECHOD_BUILD_DIR")
    where = os.path.join(cache, "system-packages", key) if cache else \
        os.path.join(scratch, "packages")
    debs = [os.path.join(where, name) for name in ("echod.deb", "echod-upgrade.deb")]
    if all(os.path.exists(deb) for deb in debs):
        log(f"package built for {release.name} from this tree: {where}")
        return debs
    shutil.rmtree(where, ignore_errors=True)
    building = tempfile.mkdtemp(prefix="echod-build.", dir=scratch)
    try:
        deb = build_deb(release, source_dir, building)
        check_lintian(release, building)
        upgrade_deb = build_deb(release, source_dir, building, UPGRADE_VERSION)
        os.makedirs(where)
        for built, kept in zip((deb, upgrade_deb), debs):
            shutil.copy(built, kept)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return debs


def tracked_files(source_dir):
    """The tracked (and new, unignored) files of @source_dir, relative to it;
    None outside git."""
    listed = subprocess.run(["git", "-C", source_dir, "ls-files", "-z", "--cached",
                             "--others", "--exclude-standard"],
                            capture_output=True, text=True)
    if listed.returncode != 0:
        return None
    return sorted(name for name in filter(None, listed.stdout.split("\0"))
                  if os.path.isfile(os.path.join(source_dir, name)))


def tree_hash(source_dir):
    """What the package is built from, as a hash: names and contents."""
    digest = hashlib.sha256()
    for name in tracked_files(source_dir) or []:
        digest.update(name.encode() + b"\0")
        with open(os.path.join(source_dir, name), "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()[:16]


def build_deb(release, source_dir, scratch, version=None):
    """dpkg-buildpackage, with @release's toolchain, in a copy of the tracked
    (and new, unignored) files, tests off: the package's build-time suites are
    not this test's job. The source package too, for lintian. With @version,
    the copy's debian/changelog gets an entry for it first: the same source, a
    higher version, for the upgrade."""
    where = os.path.join(scratch, "upgrade" if version else "source")
    copy = os.path.join(where, "echod")
    names = tracked_files(source_dir)
    if names is not None:
        for name in names:
            os.makedirs(os.path.dirname(os.path.join(copy, name)), exist_ok=True)
            shutil.copy2(os.path.join(source_dir, name), os.path.join(copy, name))
    else:
        shutil.copytree(source_dir, copy, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", "build*", "obj-*"))
    if version:
        prepend_changelog_entry(os.path.join(copy, "debian", "changelog"), version)
    log(f"building the package{' ' + version if version else ''} on {release.name} "
        "(dpkg-buildpackage -us -uc, nocheck)...")
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck")
    release.run(["sh", "-c", 'cd "$1" && exec dpkg-buildpackage -us -uc', "sh", copy],
                binds=[scratch], env=env, timeout=900)
    debs = glob.glob(os.path.join(where, "echod_*.deb"))
    if len(debs) != 1:
        raise AssertionError(f"dpkg-buildpackage made {debs}, not one echod .deb")
    return debs[0]


def check_lintian(release, scratch):
    """lintian of @release on the source and binary packages just built: no
    error, no warning (informational tags are not counted)."""
    changes = glob.glob(os.path.join(scratch, "source", "echod_*.changes"))
    result = release.run(["lintian", "--fail-on", "error,warning", *changes],
                         binds=[scratch], check_status=False, timeout=600)
    found = result.stdout + result.stderr
    version = release.run(["lintian", "--version"], check_status=False).stdout.strip()
    require(result.returncode == 0 and not re.search(r"^[EW]: ", found, re.MULTILINE),
            f"{version} on {release.name}: no error, no warning", found)


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
    check(c.run("pgrep", "-x", "echod|echod-acceptor|echod-conn",
                check_status=False).returncode == 1,
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
