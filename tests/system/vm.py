#!/usr/bin/env python3
"""The package's DEP-8 tests (debian/tests) in a qemu VM of a Debian release:
its own kernel and systemd on the unified cgroup v2 hierarchy, as on a real
Debian host and in Debian CI's qemu runner. Here ip-access-list (an
echo.socket drop-in with IPAddressAllow=/IPAddressDeny=, enforced with BPF on
cgroup v2) must pass: allowed sources echoed, denied ones get nothing.

The VM's disk is made from the release's cached root (debian-root, which has
linux-image-amd64 and autopkgtest) and cached beside it (vm.img, made again
with the root). qemu boots it with TCG (KVM does not run guests on these
machines), no network device, the disk as a snapshot (the cache stays
unchanged), a second small disk carrying this run: the package, the
source tree and the script that installs it and runs the tests as
autopkgtest does (dep8-run), and a second serial port. A unit in the image
runs that script at boot, its output to that port, and powers off; this test
reads the results from there.

Usage: [ECHOD_RELEASE=trixie] vm.py SOURCE_DIR
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

from dep8 import autopkgtest_summary, check_results, copy_source, expected_results
from e2e_lib import TESTS_DIR, log, release_under_test, require, run, unwind_on_signals
from e2e_packaging import packages

DISK_SIZE = "3G"
BOOT_TIMEOUT = 900       # seconds, for boot, the tests and power-off under TCG
RESULT = "ECHOD-VM-RESULT"

# Mounts this run's disk and runs its script. Its output goes to the second
# serial port, which nothing else writes to (the kernel and systemd write to
# the console on the first one, where a getty would hang up our script).
RUNNER_UNIT = """[Unit]
Description=echod system suite: run the DEP-8 tests from the second disk
After=multi-user.target
ConditionPathExists=/dev/vdb

[Service]
Type=oneshot
StandardOutput=file:/dev/ttyS1
StandardError=inherit
ExecStart=/bin/sh -c 'mkdir -p /srv/echod-vm && mount /dev/vdb /srv/echod-vm && exec /srv/echod-vm/run'
ExecStopPost=/bin/systemctl --no-block poweroff
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
"""

# What the VM runs: facts about it first (kernel, systemd, cgroup
# hierarchy), then the DEP-8 tests as autopkgtest runs them (dep8-run:
# autopkgtest itself spends a minute per test preparing the testbed under
# TCG), then the results, between markers.
RUN_SCRIPT = f"""#!/bin/sh
cd /srv/echod-vm
export DEBIAN_FRONTEND=noninteractive NO_COLOR=1
echo "kernel $(uname -r), $(systemctl --version | head -n 1), /sys/fs/cgroup is $(stat -f -c %T /sys/fs/cgroup)"
dpkg -i /srv/echod-vm/*.deb
python3 /srv/echod-vm/dep8-run /srv/echod-vm/src /tmp/out
status=$?
echo "--- summary"
cat /tmp/out/summary
echo "--- end"
echo "{RESULT} $status"
"""


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


def payload_image(scratch, deb, source_dir):
    """The second disk: this run's package, source tree and script."""
    payload = os.path.join(scratch, "payload")
    os.makedirs(payload)
    shutil.copy(deb, os.path.join(payload, os.path.basename(deb)))
    shutil.copy(os.path.join(TESTS_DIR, "dep8-run"), os.path.join(payload, "dep8-run"))
    copy_source(source_dir, os.path.join(payload, "src"))
    with open(os.path.join(payload, "run"), "w") as f:
        f.write(RUN_SCRIPT)
    os.chmod(os.path.join(payload, "run"), 0o755)
    image = os.path.join(scratch, "payload.img")
    run(["truncate", "-s", "64M", image])
    run(["mkfs.ext4", "-q", "-F", "-d", payload, image])
    return image


def boot(release, image, payload, console, results):
    """Boots the VM and waits for it to power off; returns what the runner
    wrote on the second serial port (the console's on the first goes to
    @console)."""
    kernel = sorted(glob.glob(os.path.join(release.root, "boot", "vmlinuz-*")))[-1]
    initrd = sorted(glob.glob(os.path.join(release.root, "boot", "initrd.img-*")))[-1]
    command = ["nice", "-n", "10", "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max",
               "-smp", "2", "-m", "2048", "-kernel", kernel, "-initrd", initrd,
               "-append", "console=ttyS0 root=/dev/vda rw systemd.firstboot=off "
               "systemd.mask=timers.target systemd.mask=serial-getty@ttyS0.service",
               "-drive", f"file={image},format=raw,if=virtio,snapshot=on",
               "-drive", f"file={payload},format=raw,if=virtio",
               "-nic", "none", "-serial", f"file:{console}", "-serial", f"file:{results}",
               "-display", "none",
               "-no-reboot"]
    log(f"booting {os.path.basename(kernel)} with qemu (TCG)...")
    started = time.monotonic()
    qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        out, _ = qemu.communicate(timeout=BOOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        qemu.kill()
        out, _ = qemu.communicate()
        log(f"the VM did not power off within {BOOT_TIMEOUT} s")
    with open(results, errors="replace") as f:
        text = f.read().replace("\r", "")
    kept = os.environ.get("ECHOD_BUILD_DIR")
    if kept:        # for a look after the run: the scratch dir goes
        shutil.copy(console, os.path.join(kept, f"vm-{release.name}-console.log"))
    if not text:
        with open(console, errors="replace") as f:
            log("nothing from the VM's test runner; its console:\n" + f.read()[-6000:])
    log(f"VM ran for {time.monotonic() - started:.0f} s (qemu exit status {qemu.returncode})"
        + (f": {out.decode(errors='replace')}" if out.strip() else ""))
    return text


def main(argv):
    source_dir = os.path.abspath(argv[1] if len(argv) > 1 else
                                 os.path.join(os.path.dirname(__file__), "..", ".."))
    if os.geteuid() != 0:
        log("SKIP: needs root (debootstrap, overlay mount)")
        return 77
    if not shutil.which("qemu-system-x86_64"):
        log("SKIP: no qemu-system-x86_64 (apt-get install qemu-system-x86)")
        return 77

    unwind_on_signals()

    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="echod-vm.")
    release = release_under_test()
    try:
        release.host = False            # the VM always boots a debootstrapped root
        release.prepare()
        deb, _ = packages(release, source_dir, scratch)
        image = vm_image(release, scratch)
        payload = payload_image(scratch, deb, source_dir)
        console = boot(release, image, payload, os.path.join(scratch, "console.log"),
                       os.path.join(scratch, "results.log"))
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
        check_results(summary, expected_results(source_dir), {})
    except AssertionError as e:
        log(f"not ok - {e}")
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log(f"pass: DEP-8 tests on Debian {release.name} (qemu VM, cgroup v2) in "
        f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
