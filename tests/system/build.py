#!/usr/bin/env python3
"""The package built as a Debian buildd builds it: `dpkg-buildpackage -b`
as a user without privileges, with its build-time tests on (dh_auto_test runs the unit and integration
suites), in a root of Debian $ECHOD_RELEASE for $ECHOD_ARCH, with that
release's toolchain. A foreign architecture's root runs under qemu-user
(binfmt_misc and qemu-user-static): every program of the build, the tests
and the daemon they start is emulated, on the host's kernel. A test that
relies on a kernel behaviour qemu-user does not emulate must say so and
skip by name (the VMs test that behaviour on a real kernel of the
architecture); this runner lists the skips with their reasons.

The root is debian-root's (RELEASE, or RELEASE-ARCH for a foreign one); the
build log is kept as build-RELEASE-ARCH.log in $ECHOD_BUILD_DIR.

Usage: ECHOD_RELEASE=sid ECHOD_ARCH=arm64 build.py SOURCE_DIR
Exit status: 0 pass, 1 fail, 77 skip (not root, or this machine cannot run
the architecture: the reason is printed).
"""

import contextlib
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from e2e_lib import TESTS_DIR, log, require, run, unwind_on_signals
from e2e_packaging import tracked_files, tree_hash

BUILD_TIMEOUT = 3600    # seconds: riscv64 and s390x under qemu-user are the slowest
HOST_ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                           text=True).stdout.strip()

# binfmt_misc entries that qemu-user-static does not install: on an amd64
# host it leaves i386 to the kernel, which runs no 32-bit x86 code when its
# IA-32 emulation is off. The magic and mask are qemu's (scripts/qemu-binfmt-conf.sh).
EXTRA_BINFMT = {
    "i386": ("qemu-i386", "/usr/bin/qemu-i386-static",
             r"\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00",
             r"\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"),
}


# qemu's names of Debian's architectures, for its binfmt_misc handlers.
QEMU_NAMES = {"arm64": "aarch64", "armhf": "arm", "i386": "i386", "loong64": "loongarch64",
              "ppc64el": "ppc64le", "riscv64": "riscv64", "s390x": "s390x"}


# qemu-user's CPU for an architecture, where its default costs much: for
# arm64 qemu's "max" CPU authenticates pointers with QARMA, computed in
# software for every function unstable's arm64 code enters and leaves
# (built with -mbranch-protection): a Python one-liner took 21.5 s, 3.2 s
# with pauth-impdef (pointer authentication kept, with a cheap hash).
QEMU_CPU = {"arm64": "max,pauth-impdef=on"}


def runs_here(arch):
    """arch-test runs a tiny program of @arch. Debian 12's (0.20) does not
    know loong64: then a qemu handler registered with binfmt_misc will do."""
    tested = subprocess.run(["arch-test", arch], capture_output=True, text=True)
    if "know how to detect" not in tested.stdout + tested.stderr:
        return tested.returncode == 0
    handler = f"/proc/sys/fs/binfmt_misc/qemu-{QEMU_NAMES.get(arch, arch)}"
    with contextlib.suppress(FileNotFoundError), open(handler) as f:
        return f.readline().strip() == "enabled"
    return False


def how_it_runs(arch):
    """Makes sure this machine can run @arch's programs; returns how ("native"
    or "qemu-user"), or raises ValueError with the reason it cannot."""
    if arch == HOST_ARCH:
        return "native"
    if not shutil.which("arch-test"):
        raise ValueError("no arch-test (apt-get install arch-test)")
    binfmt = "/proc/sys/fs/binfmt_misc"
    if not os.path.exists(f"{binfmt}/register"):
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", binfmt])
    extra = EXTRA_BINFMT.get(arch)
    if extra and not os.path.exists(f"{binfmt}/{extra[0]}"):
        if runs_here(arch):
            return "native"     # the kernel's IA-32 emulation is on
        name, interpreter, magic, mask = extra
        if not os.path.exists(interpreter):
            raise ValueError(f"the kernel runs no {arch} code and there is no {interpreter} "
                             "(apt-get install qemu-user-static)")
        # F: the interpreter is opened now, so that it works inside the root.
        with open(f"{binfmt}/register", "w") as f:
            f.write(f":{name}:M::{magic}:{mask}:{interpreter}:F")
    if not runs_here(arch):
        raise ValueError(f"this machine cannot run {arch} code: no binfmt_misc handler "
                         "(apt-get install qemu-user-static binfmt-support)")
    return "qemu-user"


def cannot_emulate(arch, error):
    """Why qemu-user here cannot run @arch's programs at all, from the error
    that making its root ended with, or None. Debian 12's qemu (7.2)
    emulates LoongArch's la464 without its LSX vector extension (qemu 8.1
    added it), and unstable's loong64 ld.so runs an LSX instruction (vld)
    before main: every program dies of SIGILL, dpkg first."""
    if arch == HOST_ARCH or "uncaught target signal 4 (Illegal instruction)" not in error:
        return None
    qemu = f"/usr/bin/qemu-{QEMU_NAMES.get(arch, arch)}-static"
    version = subprocess.run([qemu, "-version"], capture_output=True, text=True).stdout
    return (f"{version.splitlines()[0] if version else qemu} cannot run this architecture's "
            "programs: the first one run in the new root (dpkg) died of SIGILL, an "
            "instruction this qemu does not emulate" +
            (" (LoongArch's LSX vector extension, vld, in ld.so: qemu 8.1 added it)"
             if arch == "loong64" else ""))


def prepare_root(release, arch):
    made = run([os.path.join(TESTS_DIR, "debian-root"), release, arch], timeout=3600)
    if made.stderr:
        log(made.stderr.rstrip())
    return made.stdout.strip()


# Under the soft limit of 1024 open files that Linux and systemd's services
# start processes with, which a build may well run under: these machines
# allow 20000, which hid a test needing 1200 (the arm64 VM, its service at
# 1024, found it). A test that needs more must raise its own limit.
# As a buildd builds: as a user without privileges, owner of the tree, whose
# home does not exist (sbuild's is /nonexistent too: a build writing outside
# its tree fails); the package needs no root to build (Rules-Requires-Root:
# no), and a test that needs root must skip.
BUILD_USER = 65534      # nobody:nogroup in every Debian root
BUILD_SHELL = ('ulimit -Sn 1024 && cd "$1" && exec setpriv --reuid=65534 --regid=65534 '
               '--clear-groups env HOME=/nonexistent USER=nobody LOGNAME=nobody '
               'dpkg-buildpackage -us -uc -b')


def build(root, arch, source_dir, scratch, logfile, nocheck=False):
    """dpkg-buildpackage -b in a copy of the tracked files, tests on unless
    @nocheck; its output to @logfile. Returns (exit status, seconds)."""
    copy = os.path.join(scratch, "echod")
    for name in tracked_files(source_dir) or []:
        os.makedirs(os.path.dirname(os.path.join(copy, name)), exist_ok=True)
        shutil.copy2(os.path.join(source_dir, name), os.path.join(copy, name))
    for where, _, files in os.walk(scratch):
        for name in [where] + [os.path.join(where, f) for f in files]:
            os.lchown(name, BUILD_USER, BUILD_USER)
    env = dict(os.environ, DEB_BUILD_OPTIONS="parallel=2" + (" nocheck" if nocheck else ""),
               LC_ALL="C.UTF-8")
    if arch in QEMU_CPU:
        env["QEMU_CPU"] = QEMU_CPU[arch]
    env.pop("MAKEFLAGS", None)
    started = time.monotonic()
    with open(logfile, "w") as out:
        done = subprocess.run(
            ["nice", "-n", "10", os.path.join(TESTS_DIR, "in-root"), root,
             "--bind", f"{scratch}:{scratch}", "--",
             "sh", "-c", BUILD_SHELL, "sh", copy],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            timeout=BUILD_TIMEOUT)
    return done.returncode, time.monotonic() - started


def kept_package(release, arch, source_dir):
    """Where the package built from this tree for @release and @arch is kept
    for the other tests of this run (the VM of that architecture), when
    $ECHOD_BUILD_DIR is set (meson test sets it)."""
    cache = os.environ.get("ECHOD_BUILD_DIR")
    return cache and os.path.join(cache, "system-packages",
                                  f"{release}-{arch}-{tree_hash(source_dir)}", "echod.deb")


def keep_package(deb, release, arch, source_dir):
    kept = kept_package(release, arch, source_dir)
    if kept:
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        shutil.copy(deb, kept)


def keep_tree(copy, release, arch, source_dir):
    """A foreign architecture's build tree, tests built, for vm-build-tests
    to run them again in a VM of that architecture: tree.tar.gz beside the
    kept package, paths from / (meson's commands are absolute). Kept when
    the tests ran, passed or not: a test that fails under qemu-user for
    want of a kernel behaviour is then run where the behaviour exists."""
    kept = kept_package(release, arch, source_dir)
    if kept and arch != HOST_ARCH:
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        run(["tar", "-C", "/", "--exclude=./debian/echod", "--exclude=*.deb", "-czf",
             os.path.join(os.path.dirname(kept), "tree.tar.gz"), os.path.relpath(copy, "/")],
            timeout=300)


def kept_tree(release, arch, source_dir):
    kept = kept_package(release, arch, source_dir)
    tree = kept and os.path.join(os.path.dirname(kept), "tree.tar.gz")
    return tree if tree and os.path.exists(tree) else None


def package(release, arch, source_dir, scratch):
    """The package for @arch, built from @source_dir on @release: the one a
    build of this run kept, or built now, tests off (build-RELEASE-ARCH runs
    them)."""
    kept = kept_package(release, arch, source_dir)
    if kept and os.path.exists(kept):
        log(f"package built for {release} {arch} from this tree: {kept}")
        return kept
    root = prepare_root(release, arch)
    where = tempfile.mkdtemp(prefix="build.", dir=scratch)
    logfile = os.path.join(where, "build.log")
    log(f"building the package on {release} {arch} ({how_it_runs(arch)}, nocheck)...")
    status, took = build(root, arch, source_dir, where, logfile, nocheck=True)
    debs = glob.glob(os.path.join(where, "echod_*.deb"))
    if status != 0 or len(debs) != 1:
        with open(logfile, errors="replace") as f:
            raise AssertionError(f"dpkg-buildpackage on {release} {arch}: exit status "
                                 f"{status}, made {debs}\n" + f.read()[-6000:])
    log(f"built in {took:.0f} s")
    keep_package(debs[0], release, arch, source_dir)
    return debs[0]


# A test's line in meson test's output: "12/55 echod:integration / NAME  OK"
# (meson 1.0, Debian 12) or "12/55 integration - echod:NAME  OK" (1.12).
TEST_LINE = r"^\s*\d+/\d+ (?:\S+ / |\S+ - \S+:)(\S+)"


def test_report(text):
    """meson's summary of dh_auto_test, and each skipped test with its
    reason (what the test printed after SKIP)."""
    summary = re.findall(r"^(Ok|Expected Fail|Fail|Unexpected Pass|Skipped|Timeout):\s+(\d+)",
                         text, re.MULTILINE)
    skipped = re.findall(rf"{TEST_LINE}\s+SKIP\b", text, re.MULTILINE)
    return dict((k, int(v)) for k, v in summary), skipped


def skip_reason(text, name):
    """What a skipped test said (meson test --verbose prints its output
    right after its result line)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"{TEST_LINE}\s+SKIP\b", line) and re.search(rf"[ :]{re.escape(name)}\s", line):
            said = [x.strip() for x in lines[i + 1:i + 12] if re.match(r"^\s*SKIP\b", x)]
            return said[0] if said else "(no reason printed)"
    return "(not found in the log)"


def failure_report(text):
    """What a failed build says: the logs of the tests that failed (meson's
    --print-errorlogs blocks), or the end of the log."""
    failed = re.findall(rf"{TEST_LINE}\s+(?:FAIL|TIMEOUT)", text, re.MULTILINE)
    blocks = []
    for name in dict.fromkeys(failed):
        m = re.search(rf"^test:[^\n]*[ :]{re.escape(name)}\n.*?(?=^={{20,}})", text,
                      re.MULTILINE | re.DOTALL)
        if m:
            blocks.append(m.group(0)[-4000:])
    return "\n".join(blocks + ["--- the end of the build log:", text[-3000:]])


def main(argv):
    source_dir = os.path.abspath(argv[1] if len(argv) > 1 else
                                 os.path.join(os.path.dirname(__file__), "..", ".."))
    release = os.environ.get("ECHOD_RELEASE", "sid")
    arch = os.environ.get("ECHOD_ARCH", HOST_ARCH)
    if os.geteuid() != 0:
        log("SKIP: needs root (mmdebstrap, mount namespaces)")
        return 77
    try:
        how = how_it_runs(arch)
    except ValueError as e:
        log(f"SKIP: {arch}: {e}")
        return 77

    unwind_on_signals()
    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix=f"echod-build-{arch}.")
    kept = os.environ.get("ECHOD_BUILD_DIR") or scratch
    os.makedirs(kept, exist_ok=True)
    logfile = os.path.join(kept, f"build-{release}-{arch}.log")
    try:
        try:
            root = prepare_root(release, arch)
        except AssertionError as e:
            reason = cannot_emulate(arch, str(e))
            if not reason:
                raise
            log(f"SKIP: {arch}: {reason}")
            return 77
        log(f"dpkg-buildpackage -b, tests on, on Debian {release} {arch} ({how}): log in {logfile}")
        status, took = build(root, arch, source_dir, scratch, logfile)
        with open(logfile, errors="replace") as f:
            text = f.read()
        counts, skipped = test_report(text)
        log(f"dpkg-buildpackage exit status {status} after {took:.0f} s; dh_auto_test: "
            + (", ".join(f"{k} {v}" for k, v in counts.items()) or "no meson summary"))
        for name in skipped:
            log(f"  skipped: {name}: {skip_reason(text, name)}")
        if status != 0:
            log(failure_report(text))
        if counts:      # the tests were built and ran: the VM runs them again
            keep_tree(os.path.join(scratch, "echod"), release, arch, source_dir)
        require(status == 0, f"dpkg-buildpackage -b with tests on, Debian {release} {arch}")
        require(counts.get("Ok", 0) > 0 and not counts.get("Fail") and not counts.get("Timeout"),
                f"dh_auto_test ran the suites and none failed: {counts}")
        debs = glob.glob(os.path.join(scratch, "echod_*.deb"))
        require(len(debs) == 1, f"one echod .deb: {[os.path.basename(d) for d in debs]}")
        built_for = run(["dpkg-deb", "-f", debs[0], "Architecture"]).stdout.strip()
        require(built_for == arch, f"{os.path.basename(debs[0])} is for {built_for}")
        keep_package(debs[0], release, arch, source_dir)
    except AssertionError as e:
        log(f"not ok - {e}")
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log(f"pass: the package builds with its tests on Debian {release} {arch} ({how}) in "
        f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
