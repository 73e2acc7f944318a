#!/usr/bin/env python3
"""Debian's QA tools on the package, as Debian runs them on an upload, with
the tools of Debian $ECHOD_RELEASE (its cached root, debian-root):

- lintian -I --pedantic on the source and binary packages: no tag at all,
  but the overrides of debian/ (each says why in a comment; an override
  for one release's lintian shows as unused-override on another's) and the
  tags EXPECTED_TAGS lists, with the reason;
- blhc --bindnow on the build log: every hardening flag of hardening=+all
  reached every compile and link (dh_auto_build runs ninja -v). PIE is
  gcc's default on every release architecture, so dpkg passes no -fPIE or
  -pie and blhc --pie (--all) would flag every link: readelf checks the
  package's programs instead (PIE, BIND_NOW, RELRO, no executable stack);
- reprotest: the package built twice with its usual variations (build path,
  time, environment, locale, time zone, umask, number of CPUs, kernel
  version, ASLR, home, PATH, host and domain name) must be identical;
  diffoscope shows what differs if not. The variations that need set-up
  this runner does not do are listed in REPROTEST_VARIATIONS;
- piuparts: installed, removed and purged in a clean minbase root of the
  release (debian-root RELEASE ARCH base), nothing left behind. piuparts'
  chroot runs no systemd, so that the units stop and port 7 closes on
  remove is checked in the VMs, where systemd runs (vm-e2e-run).

Usage: ECHOD_RELEASE=sid qa.py SOURCE_DIR
Exit status: 0 pass, 1 fail, 77 skip (not root).
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from e2e_lib import FAILURES, TESTS_DIR, check, log, require, run, unwind_on_signals
from e2e_packaging import tracked_files

HOST_ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                           text=True).stdout.strip()

# Tags lintian may report on a release, and why each is no fault of the
# package. They are here, not in debian/source/lintian-overrides, because
# the same source is checked by three lintian versions, and an override of
# a tag that one does not know is an error there (alien-tag).
EXPECTED_TAGS = {
    "bookworm": {
        # Tag removed from later lintian (an override is alien-tag there).
        "package-supports-alternative-init-but-no-init.d-script":
            "socket activation is the design: no init script can replace echo.socket",
    },
    "sid": {
        # Both fields are what unstable's dpkg assumes without them, but
        # not Debian 12's, which builds the same source: without Priority
        # lintian 2.116 warns recommended-field, and without R-R-R dpkg
        # 1.21 would run the binary targets as (fake)root.
        "redundant-priority-optional-field":
            "Debian 12's lintian warns recommended-field Priority without it",
        "redundant-rules-requires-root-no-field":
            "Debian 12's dpkg defaults to binary-targets without it",
    },
}

# What piuparts may find left after the purge, and why it is not echod's.
PIUPARTS_IGNORE = {
    # apt's debconf preconfiguration (dpkg-preconfigure) makes it on the
    # first install of a root that never ran it; echod uses no debconf.
    "/var/cache/debconf/tmp.ci/": "debconf's, made by apt's preconfiguration",
}

# reprotest's default variations (+all) but those that need set-up here:
# user_group (a second build user, which reprotest wants named) and
# fileordering (disorderfs, a FUSE mount inside the root's namespace).
REPROTEST_VARIATIONS = "+all,-user_group,-fileordering"


def prepare_root(release, kind="full"):
    made = run([os.path.join(TESTS_DIR, "debian-root"), release, HOST_ARCH, kind],
               timeout=1800)
    if made.stderr:
        log(made.stderr.rstrip())
    return made.stdout.strip()


def in_root(root, scratch, *cmd, **kwargs):
    return run([os.path.join(TESTS_DIR, "in-root"), root, "--bind", f"{scratch}:{scratch}",
                "--", *cmd], **kwargs)


def copy_tree(source_dir, dest):
    for name in tracked_files(source_dir) or []:
        os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
        shutil.copy2(os.path.join(source_dir, name), os.path.join(dest, name))


def build(root, source_dir, scratch, release):
    """dpkg-buildpackage (source and binary), tests off: build-RELEASE-ARCH
    runs them. Returns the build log's text."""
    copy = os.path.join(scratch, "build", "echod")
    copy_tree(source_dir, copy)
    started = time.monotonic()
    done = in_root(root, scratch, "sh", "-c",
                   'cd "$1" && exec dpkg-buildpackage -us -uc 2>&1', "sh", copy,
                   env=dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2"),
                   check_status=False, timeout=900)
    with open(os.path.join(scratch, "build.log"), "w") as f:
        f.write(done.stdout)
    kept = os.environ.get("ECHOD_BUILD_DIR")
    if kept:
        shutil.copy(os.path.join(scratch, "build.log"),
                    os.path.join(kept, f"qa-{release}-build.log"))
    require(done.returncode == 0, f"dpkg-buildpackage ({time.monotonic() - started:.0f} s)",
            done.stdout[-4000:])
    return done.stdout


def overridden_tags(source_dir):
    """The tags debian/'s lintian overrides name."""
    tags = set()
    for path in glob.glob(os.path.join(source_dir, "debian", "*lintian-overrides")) + \
            glob.glob(os.path.join(source_dir, "debian", "source", "lintian-overrides")):
        with open(path) as f:
            for line in f:
                m = re.match(r"^[^#\s][^:]*:\s*(\S+)", line)
                if m:
                    tags.add(m.group(1))
    return tags


def check_lintian(root, source_dir, scratch, release):
    changes = glob.glob(os.path.join(scratch, "build", "echod_*.changes"))
    require(len(changes) == 1, "one .changes for lintian to check", str(changes))
    overridden = overridden_tags(source_dir)
    result = in_root(root, scratch, "lintian", "-I", "--pedantic", "--color=never",
                     *changes, check_status=False, timeout=600)
    # 0: no error tag, 1: some (listed below); anything else: lintian failed,
    # and its silence would say nothing.
    require(result.returncode in (0, 1), f"lintian ran (exit status {result.returncode})",
            result.stderr[-2000:])
    version = in_root(root, scratch, "lintian", "--version").stdout.strip()
    tags = [line for line in result.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    unexpected = []
    for line in tags:
        reason = next((why for tag, why in EXPECTED_TAGS.get(release, {}).items()
                       if re.search(rf": {re.escape(tag)}\b", line)), None)
        unused = re.search(r"\bunused-override (\S+)", line)
        if unused and unused.group(1) in overridden:
            reason = "an override debian/ keeps, with its reason, for another release's lintian"
        if reason:
            log(f"  {line}   (expected: {reason})")
        else:
            unexpected.append(line)
    check(not unexpected, f"{version} -I --pedantic on {release}: "
          f"{len(tags)} tags, none but the expected ones", "\n".join(unexpected) +
          result.stderr[-2000:])


def check_blhc(root, scratch, release):
    result = in_root(root, scratch, "blhc", "--bindnow", "--line-numbers",
                     os.path.join(scratch, "build.log"), check_status=False)
    version = in_root(root, scratch, "sh", "-c", "blhc --version | head -n 1",
                      check_status=False).stdout.split("Copyright")[0].strip()
    check(result.returncode == 0 and not (result.stdout + result.stderr).strip(),
          f"{version or 'blhc'} --bindnow on {release}'s build log: every hardening flag used",
          (result.stdout + result.stderr)[-4000:])
    deb = glob.glob(os.path.join(scratch, "build", "echod_*.deb"))[0]
    unpacked = os.path.join(scratch, "unpacked")
    run(["dpkg-deb", "-x", deb, unpacked])
    programs = [path for path in glob.glob(os.path.join(unpacked, "usr", "*bin", "*")) +
                glob.glob(os.path.join(unpacked, "usr", "libexec", "**", "*"), recursive=True)
                if os.path.isfile(path) and open(path, "rb").read(4) == b"\x7fELF"]
    require(programs, "the package ships programs", str(programs))
    for binary in programs:
        name = "/" + os.path.relpath(binary, unpacked)
        header = run(["readelf", "-h", binary]).stdout
        dynamic = run(["readelf", "-d", binary]).stdout
        segments = run(["readelf", "-lW", binary]).stdout
        stack = re.search(r"GNU_STACK.* (\S+) +0x\S+$", segments, re.MULTILINE)
        check(re.search(r"Type:\s+DYN\b", header),
              f"{name} is a position-independent executable", header)
        check(re.search(r"\(FLAGS\).*\bBIND_NOW\b|\(FLAGS_1\).*\bNOW\b", dynamic) and
              "GNU_RELRO" in segments and stack and "E" not in stack.group(1),
              f"{name}: BIND_NOW, RELRO, no executable stack", dynamic + segments)


def check_reprotest(root, source_dir, scratch, release):
    """Two builds with reprotest's variations, in the release's root, as
    root (reprotest's null server runs them here). reprotest runs
    diffoscope when the .debs differ; its output is kept beside the logs."""
    source = os.path.join(scratch, "reprotest", "echod")
    copy_tree(source_dir, source)
    store = os.path.join(scratch, "reprotest", "out")
    started = time.monotonic()
    result = in_root(root, scratch, "sh", "-c",
                     f'cd "$1" && exec reprotest --verbosity=1 --vary={REPROTEST_VARIATIONS} '
                     '--store-dir="$2" --min-cpus=2 . "../*.deb" -- null 2>&1',
                     "sh", source, store,
                     env=dict(os.environ, DEB_BUILD_OPTIONS="nocheck"),
                     check_status=False, timeout=1800)
    kept = os.environ.get("ECHOD_BUILD_DIR")
    if kept:
        with open(os.path.join(kept, f"qa-{release}-reprotest.log"), "w") as f:
            f.write(result.stdout)
    verdict = re.findall(r"^=+ (Reproduction successful|Reproduction failed).*$",
                         result.stdout, re.MULTILINE) or \
        re.findall(r"(Reproduction successful|Reproduction failed)", result.stdout)
    check(result.returncode == 0, f"reprotest --vary={REPROTEST_VARIATIONS} on {release}: "
          f"{verdict[-1] if verdict else 'exit status ' + str(result.returncode)} "
          f"({time.monotonic() - started:.0f} s)", result.stdout[-12000:])


def check_piuparts(base, scratch, release, archive):
    debs = glob.glob(os.path.join(scratch, "build", "echod_*.deb"))
    started = time.monotonic()
    result = run(["piuparts", f"--existing-chroot={base}", "-d", release, "-m", archive,
                  "--no-check-valid-until", "--no-upgrade-test", "--warn-on-debsums-errors",
                  *(f"--ignore={path}" for path in PIUPARTS_IGNORE),
                  f"--tmpdir={scratch}", f"--log-file={scratch}/piuparts.log", *debs],
                 check_status=False, timeout=1800)
    text = open(f"{scratch}/piuparts.log", errors="replace").read() \
        if os.path.exists(f"{scratch}/piuparts.log") else result.stdout + result.stderr
    verdict = re.findall(r"^\S+ \S+ (PASS|FAIL): .*$", text, re.MULTILINE)
    check(result.returncode == 0, f"piuparts (install, remove, purge in a clean {release} "
          f"root: nothing left) {' '.join(verdict[-1:]) or 'exit status ' + str(result.returncode)}"
          f" ({time.monotonic() - started:.0f} s)", text[-6000:])


def archive():
    """The archive debian-root makes its roots from."""
    return run([os.path.join(TESTS_DIR, "debian-root"), "--archive"]).stdout.strip()


def main(argv):
    source_dir = os.path.abspath(argv[1] if len(argv) > 1 else
                                 os.path.join(os.path.dirname(__file__), "..", ".."))
    release = os.environ.get("ECHOD_RELEASE", "sid")
    if os.geteuid() != 0:
        log("SKIP: needs root (mmdebstrap, piuparts)")
        return 77
    if not shutil.which("piuparts"):
        log("SKIP: no piuparts (apt-get install piuparts)")
        return 77

    unwind_on_signals()
    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix=f"echod-qa-{release}.")
    try:
        root = prepare_root(release)
        base = prepare_root(release, "base")
        text = build(root, source_dir, scratch, release)
        log(f"built on {release}: {len(text.splitlines())} lines of build log")
        check_lintian(root, source_dir, scratch, release)
        check_blhc(root, scratch, release)
        check_piuparts(base, scratch, release, archive())
        check_reprotest(root, source_dir, scratch, release)
        if FAILURES:
            raise AssertionError(f"{len(FAILURES)} checks failed: " + "; ".join(FAILURES))
    except AssertionError as e:
        log(f"not ok - {e}")
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log(f"pass: lintian, blhc, piuparts and reprotest on Debian {release} in "
        f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
