#!/usr/bin/env python3
"""The package's DEP-8 tests (debian/tests) in a booted container, run by
autopkgtest itself, as Debian's CI runs them.

Boots the Debian release $ECHOD_RELEASE (the host's by default) in
systemd-nspawn as e2e.py does, with the package built from SOURCE_DIR on that
release, and runs inside `autopkgtest SOURCE PACKAGE -- null`: autopkgtest
installs the package and the tests' dependencies, then runs each test as root
in the container, where a real systemd runs. Every test must pass, but for
ip-access-list, which needs cgroup v2 and skips on these hosts' cgroup v1
hierarchy (vm.py runs it where it means something).

Usage: [ECHOD_RELEASE=trixie] dep8.py SOURCE_DIR
Exit status: 0 pass, 1 fail, 77 skip.
"""

import os
import shutil
import sys
import tempfile
import time

from e2e_lib import Container, log, release_under_test, require, unwind_on_signals
from e2e_packaging import packages, tracked_files
from e2e import reason_not_to_run

# The tests that may skip here, and why.
MAY_SKIP = {"ip-access-list": "IPAddressDeny= needs cgroup v2; this container runs on v1"}


def copy_source(source_dir, dest):
    """The source tree as autopkgtest unpacks it: tracked files only."""
    for name in tracked_files(source_dir) or []:
        os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
        shutil.copy2(os.path.join(source_dir, name), os.path.join(dest, name))


def autopkgtest_summary(text):
    """autopkgtest's summary file: {test: (result, details)}."""
    results = {}
    for line in text.splitlines():
        fields = line.split(None, 2)
        if len(fields) >= 2:
            results[fields[0]] = (fields[1], fields[2] if len(fields) > 2 else "")
    return results


def expected_results(source_dir):
    """Every test named in debian/tests/control."""
    names, field = [], None
    with open(os.path.join(source_dir, "debian", "tests", "control")) as f:
        for line in f:
            if line.startswith("#"):
                continue
            if not line[:1].isspace():
                field, _, line = line.partition(":")
            if field == "Tests":
                names += [x.strip() for x in line.split(",") if x.strip()]
    return names


def check_results(summary, names, skippable):
    for name in names:
        result, details = summary.get(name, ("MISSING", ""))
        if name in skippable and result == "SKIP":
            log(f"ok - {name}: SKIP ({skippable[name]})")
            continue
        require(result == "PASS", f"{name}: {result} {details}".rstrip())


def autopkgtest_command(where, deb):
    """autopkgtest with the null runner, on the system it runs on: a booted
    container or VM made for this run. The null runner cannot know that, and
    would skip every test restricted to isolation-container: the restriction
    is met, and ignored."""
    return ["autopkgtest", "--ignore-restrictions=isolation-container",
            "--output-dir", f"{where}/out", f"{where}/src", f"{where}/{deb}", "--", "null"]


def run_dep8(container, deb, source_dir):
    where = "/srv/echod-dep8"
    inside = container.root + where
    os.makedirs(inside)
    shutil.copy(deb, os.path.join(inside, os.path.basename(deb)))
    copy_source(source_dir, os.path.join(inside, "src"))
    container.run("rm", "-f", "/usr/sbin/policy-rc.d")   # a Docker-style one blocks postinst
    started = time.monotonic()
    result = container.run(*autopkgtest_command(where, os.path.basename(deb)),
                           check_status=False, timeout=900)
    log(result.stdout[-6000:] + result.stderr[-3000:])
    with open(os.path.join(inside, "out", "summary")) as f:
        summary = autopkgtest_summary(f.read())
    log(f"autopkgtest exit status {result.returncode} in {time.monotonic() - started:.0f} s")
    return summary


def main(argv):
    source_dir = os.path.abspath(argv[1] if len(argv) > 1 else
                                 os.path.join(os.path.dirname(__file__), "..", ".."))
    reason = reason_not_to_run()
    if reason:
        log(f"SKIP: {reason}")
        return 77

    unwind_on_signals()

    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="echod-dep8.")
    release = release_under_test()
    container = Container(scratch, source_dir, release)
    try:
        release.prepare()
        deb, _ = packages(release, source_dir, scratch)
        container.mount()
        container.boot()
        summary = run_dep8(container, deb, source_dir)
        check_results(summary, expected_results(source_dir), MAY_SKIP)
    except AssertionError as e:
        log(f"not ok - {e}")
        return 1
    finally:
        container.close()
        shutil.rmtree(scratch, ignore_errors=True)
    log(f"pass: DEP-8 tests on Debian {release.name} (container) in "
        f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
