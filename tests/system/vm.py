#!/usr/bin/env python3
"""The package's DEP-8 tests (debian/tests) in a qemu VM of a Debian release:
its own kernel and systemd on the unified cgroup v2 hierarchy, as on a real
Debian host and in Debian CI's qemu runner. Here ip-access-list (an
echo.socket drop-in with IPAddressAllow=/IPAddressDeny=, enforced with BPF on
cgroup v2) must pass: allowed sources echoed, denied ones get nothing.
With $ECHOD_VM_E2E (names of e2e_*.py modules, e.g. "e2e_restarts"), the
same boot then runs those modules' end-to-end checks against the VM's own
systemd (vm-e2e-run): where systemd-nspawn cannot boot the release's
systemd (>= 258 has no cgroup v1), or on another architecture.

The VM's disk is made from the release's cached root (debian-root, which has
the kernel and autopkgtest) and cached beside it (vm.img, made again with
the root). qemu boots it with TCG (KVM does not run guests on these
machines), no network device, the disk as a snapshot (the cache stays
unchanged), a second small disk carrying this run: the package, the
source tree and the script that installs it and runs the tests as
autopkgtest does (dep8-run), and a second serial port (amd64) or a virtio
console (arm64, whose virt machine has one UART). A unit in the image runs
that script at boot, its output to that port, and powers off; this test
reads the results from there.

$ECHOD_ARCH (the host's by default) other than the host's boots that
architecture's kernel and root (debian-root RELEASE ARCH vm) in its
qemu-system, with the package built for it in its build root under
qemu-user (build.py, tests off: build-RELEASE-ARCH runs them).

Usage: [ECHOD_RELEASE=trixie] [ECHOD_ARCH=arm64] [ECHOD_VM_E2E=e2e_restarts] vm.py SOURCE_DIR
Exit status: 0 pass, 1 fail, 77 skip (not root, no qemu).
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

import build
from dep8 import autopkgtest_summary, check_results, copy_source, expected_results
from e2e_lib import TESTS_DIR, check, log, release_under_test, require, run, unwind_on_signals
from e2e_packaging import packages

DISK_SIZE = "3G"
BOOT_TIMEOUT = 900       # seconds, for boot, the tests and power-off under TCG
E2E_TIMEOUT = 1800       # more, with end-to-end checks after them
RESULT = "ECHOD-VM-RESULT"
E2E_RESULT = "ECHOD-E2E-RESULT"

# How qemu-system boots each architecture: its binary and options, the
# kernel's console, and where the results come out in the guest (its output
# on the host goes to the results file): a second serial port, which
# nothing else writes to (the kernel and systemd write to the console on the
# first one, where a getty would hang up our script), or a virtio console.
MACHINES = {
    "amd64": {
        "qemu": ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max"],
        "console": "ttyS0",
        "results_device": "/dev/ttyS1",
        "results": lambda path: ["-serial", f"file:{path}"],
    },
    "arm64": {
        # pauth-impdef: pointer authentication with a cheap hash, not
        # QARMA, which costs TCG much time and tests nothing here.
        "qemu": ["qemu-system-aarch64", "-accel", "tcg", "-M", "virt",
                 "-cpu", "max,pauth-impdef=on"],
        "console": "ttyAMA0",
        "results_device": "/dev/hvc0",
        # systemd's getty generator starts a getty on a virtio console,
        # which would take the results port and hang up our script.
        "gettys": ["serial-getty@hvc0.service"],
        "results": lambda path: ["-device", "virtio-serial-pci", "-chardev",
                                 f"file,id=results,path={path}",
                                 "-device", "virtconsole,chardev=results"],
    },
}

# Mounts this run's disk and runs its script, which sends its output where
# this architecture's results come out.
RUNNER_UNIT = """[Unit]
Description=echod system suite: run the DEP-8 tests from the second disk
After=multi-user.target
ConditionPathExists=/dev/vdb

[Service]
Type=oneshot
StandardOutput=journal+console
ExecStart=/bin/sh -c 'mkdir -p /srv/echod-vm && mount /dev/vdb /srv/echod-vm && exec /srv/echod-vm/run'
ExecStopPost=/bin/systemctl --no-block poweroff
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
"""


def run_script(results_device, e2e_modules, build_tests):
    """What the VM runs, its output to @results_device (waited for: a virtio
    console's module may still be loading): facts about it first (kernel,
    systemd, cgroup hierarchy), then the DEP-8 tests as autopkgtest runs
    them (dep8-run: autopkgtest itself spends a minute per test preparing
    the testbed under TCG), then the results, between markers; then, with
    @e2e_modules, their end-to-end checks (vm-e2e-run); with @build_tests,
    the build-time tests of a foreign architecture's build tree, again, on
    this architecture's kernel (vm-build-tests)."""
    e2e = "" if not e2e_modules else f"""
echo "--- e2e"
python3 /srv/echod-vm/system/vm-e2e-run /srv/echod-vm/src /srv/echod-vm/echod.deb {' '.join(e2e_modules)}
"""
    if build_tests:
        e2e += """
echo "--- build-tests"
python3 /srv/echod-vm/system/vm-build-tests /srv/echod-vm/tree.tar.gz
"""
    return f"""#!/bin/sh
i=0
while [ ! -e {results_device} ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
exec >{results_device} 2>&1
cd /srv/echod-vm
export DEBIAN_FRONTEND=noninteractive NO_COLOR=1 PYTHONDONTWRITEBYTECODE=1
echo "kernel $(uname -r) $(uname -m), $(systemctl --version | head -n 1), /sys/fs/cgroup is $(stat -f -c %T /sys/fs/cgroup)"
dpkg -i /srv/echod-vm/echod.deb
python3 /srv/echod-vm/dep8-run /srv/echod-vm/src /tmp/out
status=$?
echo "--- summary"
cat /tmp/out/summary
echo "--- end"
echo "{RESULT} $status"
{e2e}"""


def image_path(release):
    return os.path.join(os.path.dirname(release.root), "vm.img")


def vm_image(release, scratch):
    """The release's VM disk: its cached root, plus an fstab for /dev/vda and
    the runner unit, made into an ext4 image without a partition table. Made
    again when older than the root, or when the runner unit changed."""
    image = image_path(release)
    stamp = image + ".unit"
    fresh = os.path.exists(image) and os.path.getmtime(image) > \
        os.path.getmtime(os.path.join(os.path.dirname(release.root), "stamp"))
    if fresh and os.path.exists(stamp) and open(stamp).read() == RUNNER_UNIT:
        return image
    log(f"making the {release.name} VM disk {image} ({DISK_SIZE})...")
    started = time.monotonic()
    layers = {name: os.path.join(scratch, f"image-{name}") for name in ("upper", "work", "root")}
    for path in layers.values():
        os.makedirs(path)
    run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={release.root},"
         f"upperdir={layers['upper']},workdir={layers['work']}", layers["root"]])
    try:
        root = layers["root"]
        with open(f"{root}/etc/fstab", "w") as f:
            f.write("/dev/vda / ext4 rw 0 1\n")
        with open(f"{root}/etc/hostname", "w") as f:
            f.write("echod-vm\n")
        with open(f"{root}/etc/systemd/system/echod-vm-test.service", "w") as f:
            f.write(RUNNER_UNIT)
        wants = f"{root}/etc/systemd/system/multi-user.target.wants"
        os.makedirs(wants, exist_ok=True)
        link = f"{wants}/echod-vm-test.service"
        if not os.path.lexists(link):
            os.symlink("/etc/systemd/system/echod-vm-test.service", link)
        new = image + ".new"
        with contextlib.suppress(FileNotFoundError):
            os.remove(new)
        run(["truncate", "-s", DISK_SIZE, new])
        run(["nice", "-n", "10", "mkfs.ext4", "-q", "-F", "-L", "echod-vm", "-d", root, new],
            timeout=600)
    finally:
        run(["umount", layers["root"]], check_status=False)
    os.replace(new, image)
    with open(stamp, "w") as f:
        f.write(RUNNER_UNIT)
    log(f"VM disk made in {time.monotonic() - started:.0f} s")
    return image


def payload_image(scratch, deb, source_dir, machine, e2e_modules, tree):
    """The second disk: this run's package, source tree and script, and the
    system suite's files for the end-to-end checks; with @tree, the build
    tree whose tests vm-build-tests runs."""
    payload = os.path.join(scratch, "payload")
    os.makedirs(payload)
    shutil.copy(deb, os.path.join(payload, "echod.deb"))
    shutil.copy(os.path.join(TESTS_DIR, "dep8-run"), os.path.join(payload, "dep8-run"))
    copy_source(source_dir, os.path.join(payload, "src"))
    if e2e_modules or tree:
        shutil.copytree(TESTS_DIR, os.path.join(payload, "system"),
                        ignore=shutil.ignore_patterns("__pycache__"))
    if tree:
        shutil.copy(tree, os.path.join(payload, "tree.tar.gz"))
    with open(os.path.join(payload, "run"), "w") as f:
        f.write(run_script(machine["results_device"], e2e_modules, bool(tree)))
    os.chmod(os.path.join(payload, "run"), 0o755)
    image = os.path.join(scratch, "payload.img")
    run(["truncate", "-s", "256M", image])
    run(["mkfs.ext4", "-q", "-F", "-d", payload, image])
    return image


def boot(release, machine, image, payload, console, results, timeout):
    """Boots the VM and waits for it to power off; returns what the runner
    wrote on the results port (the console's goes to @console)."""
    kernel = sorted(glob.glob(os.path.join(release.root, "boot", "vmlinuz-*")))[-1]
    initrd = sorted(glob.glob(os.path.join(release.root, "boot", "initrd.img-*")))[-1]
    tty = machine["console"]
    masks = "".join(f" systemd.mask={unit}" for unit in
                    [f"serial-getty@{tty}.service", *machine.get("gettys", [])])
    command = ["nice", "-n", "10", *machine["qemu"],
               "-smp", "2", "-m", "2048", "-kernel", kernel, "-initrd", initrd,
               "-append", f"console={tty} root=/dev/vda rw systemd.firstboot=off "
               f"systemd.mask=timers.target{masks}",
               "-drive", f"file={image},format=raw,if=virtio,snapshot=on",
               "-drive", f"file={payload},format=raw,if=virtio",
               "-nic", "none", "-serial", f"file:{console}", *machine["results"](results),
               "-display", "none",
               "-no-reboot"]
    log(f"booting {os.path.basename(kernel)} with {machine['qemu'][0]} (TCG)...")
    started = time.monotonic()
    qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        out, _ = qemu.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        qemu.kill()
        out, _ = qemu.communicate()
        log(f"the VM did not power off within {timeout} s")
    with open(results, errors="replace") as f:
        text = f.read().replace("\r", "")
    kept = os.environ.get("ECHOD_BUILD_DIR")
    if kept:        # for a look after the run: the scratch dir goes
        name = f"vm-{release.name}-{release.arch}"
        shutil.copy(console, os.path.join(kept, f"{name}-console.log"))
        with open(os.path.join(kept, f"{name}-results.log"), "w") as f:
            f.write(text)
    if not text:
        with open(console, errors="replace") as f:
            log("nothing from the VM's test runner; its console:\n" + f.read()[-6000:])
    log(f"VM ran for {time.monotonic() - started:.0f} s (qemu exit status {qemu.returncode})"
        + (f": {out.decode(errors='replace')}" if out.strip() else ""))
    return text


def prepare(release, arch, source_dir, scratch):
    """The release's root to boot (its kernel, systemd) and the package to
    install in it: for the host's architecture, the root shared with the
    other system tests and their package (lintian-checked); for another, a
    VM root of that architecture and the package built in its build root."""
    if arch == build.HOST_ARCH:
        release.host = False            # the VM always boots a debootstrapped root
        release.prepare()
        deb, _ = packages(release, source_dir, scratch)
        return deb
    build.how_it_runs(arch)            # the package is built under qemu-user
    made = run([os.path.join(TESTS_DIR, "debian-root"), release.name, arch, "vm"],
               timeout=3600)
    if made.stderr:
        log(made.stderr.rstrip())
    release.root = made.stdout.strip()
    return build.package(release.name, arch, source_dir, scratch)


def main(argv):
    source_dir = os.path.abspath(argv[1] if len(argv) > 1 else
                                 os.path.join(os.path.dirname(__file__), "..", ".."))
    arch = os.environ.get("ECHOD_ARCH") or build.HOST_ARCH
    e2e_modules = os.environ.get("ECHOD_VM_E2E", "").split()
    if os.geteuid() != 0:
        log("SKIP: needs root (mmdebstrap, overlay mount)")
        return 77
    machine = MACHINES.get(arch)
    if not machine:
        log(f"SKIP: no qemu-system set-up for {arch} in vm.py")
        return 77
    if not shutil.which(machine["qemu"][0]):
        log(f"SKIP: no {machine['qemu'][0]} (apt-get install qemu-system-x86 qemu-system-arm)")
        return 77

    unwind_on_signals()

    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="echod-vm.")
    release = release_under_test()
    release.arch = arch
    try:
        deb = prepare(release, arch, source_dir, scratch)
        tree = build.kept_tree(release.name, arch, source_dir) \
            if arch != build.HOST_ARCH else None
        # A foreign architecture's VM is where its build-time tests that
        # qemu-user had to skip run on a real kernel: without the tree of
        # that build there would be nothing to run them from.
        require(arch == build.HOST_ARCH or tree,
                f"the build tree of build-{release.name}-{arch}, with its tests, kept "
                f"for this tree (run build-{release.name}-{arch} first, in the same "
                "build directory)")
        image = vm_image(release, scratch)
        payload = payload_image(scratch, deb, source_dir, machine, e2e_modules, tree)
        console = boot(release, machine, image, payload, os.path.join(scratch, "console.log"),
                       os.path.join(scratch, "results.log"),
                       E2E_TIMEOUT if e2e_modules else BOOT_TIMEOUT)
        facts = re.search(r"^kernel .*$", console, re.MULTILINE)
        log(facts.group(0) if facts else console[-4000:])
        require(facts and facts.group(0).endswith("cgroup2fs"),
                "the VM runs the unified cgroup v2 hierarchy")
        results = re.search(r"^--- summary\n(.*?)^--- end", console, re.MULTILINE | re.DOTALL)
        require(results, "the DEP-8 tests ran in the VM and reported", console[-6000:])
        status = re.search(rf"^{RESULT} (\d+)", console, re.MULTILINE)
        log(f"dep8-run exit status in the VM: {status.group(1) if status else '?'}")
        ran = console[facts.end():results.start()]
        log(ran[-12000:])
        summary = autopkgtest_summary(results.group(1))
        # Every part's results, then the verdict: one failing part does not
        # hide the others'.
        failed = []
        try:
            check_results(summary, expected_results(source_dir), {})
        except AssertionError as e:
            failed.append(f"DEP-8: {e}")
        if e2e_modules:
            end = console.find("--- build-tests") if tree else -1
            e2e = console[console.find("--- e2e"):end if end >= 0 else len(console)]
            log(e2e[-20000:])
            count = re.search(rf"^{E2E_RESULT} (\d+)", e2e, re.MULTILINE)
            if not check(count and count.group(1) == "0",
                         f"end-to-end checks of {' '.join(e2e_modules)} in the VM: "
                         f"{count.group(1) + ' failed' if count else 'no result'}"):
                failed.append("end-to-end checks")
        if tree:
            ran = console[console.find("--- build-tests"):]
            log(ran[-12000:])
            counts = re.search(r"^ECHOD-BUILD-TESTS-RESULT (\d+) (\d+) (\d+)", ran, re.MULTILINE)
            if not check(counts and counts.group(1) == "0",
                         f"the build-time tests of the {arch} build tree on a real {arch} "
                         "kernel: " + (f"{counts.group(1)} failed, {counts.group(2)} skipped, "
                                       f"{counts.group(3)} passed" if counts else "no result")):
                failed.append("build-time tests")
        require(not failed, "all parts pass", "; ".join(failed))
    except AssertionError as e:
        log(f"not ok - {e}")
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log(f"pass: DEP-8 tests{' and ' + ' '.join(e2e_modules) if e2e_modules else ''}"
        f"{' and the build-time tests' if tree else ''} on Debian "
        f"{release.name} {arch} (qemu VM, cgroup v2) in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
