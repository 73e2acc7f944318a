#!/usr/bin/env python3
"""Where a connection's time goes in a forking server, by perf samples.

Started by bench/profile inside the same kind of namespaces as the driver.
Starts the server, runs `echo-load --mode crr` against it while `perf record
-g -e cpu-clock -p SERVER` samples the server and every child it forks (a
software clock: this works where the CPU's counters are not exposed, as in
most VMs), and sorts the server's samples by the kernel or
user-space function they were taken in: fork in the parent, the child's
start-up, its page faults, its syscalls, its exit, the parent's reaping.
Prints CPU microseconds per connection for each.
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True     # nothing written into bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402  (the namespace set-up and process helpers)

# First match wins, searched from the sampled frame outwards: a sample in a
# page fault taken inside exit_mmap counts as exit. Names are kernel or libc
# functions of Linux 6.x and glibc 2.36.
PHASES = [
    ("fork: copy_process (parent)", ["copy_process", "kernel_clone"]),
    ("exit: address space teardown", ["exit_mmap"]),
    ("exit: files, signals, task", ["do_exit", "do_group_exit"]),
    ("reap: wait4", ["__do_sys_wait4", "kernel_wait4", "do_wait"]),
    ("child start: schedule_tail", ["schedule_tail"]),
    ("page faults", ["asm_exc_page_fault"]),
    ("accept4", ["__sys_accept4", "do_accept"]),
    ("poll / signalfd", ["do_sys_poll", "__x64_sys_poll", "signalfd_read"]),
    ("close / shutdown", ["__x64_sys_close", "__x64_sys_shutdown", "tcp_close", "__fput"]),
    ("send / recv / splice", ["tcp_sendmsg", "tcp_recvmsg", "sock_read_iter", "__sys_sendto",
                              "__sys_recvfrom", "do_splice", "__x64_sys_splice"]),
    ("signal mask, sigaction", ["__x64_sys_rt_sigprocmask", "__x64_sys_rt_sigaction"]),
    ("fcntl", ["do_fcntl"]),
    ("user: dynamic linker", ["_dl_fixup", "_dl_runtime_resolve", "do_lookup_x",
                              "_dl_lookup_symbol_x"]),
]


def classify(frames):
    for name, keys in PHASES:
        for f in frames:
            if any(f == k or f.startswith(k + ".") for k in keys):
                return name
    top = frames[0] if frames else "?"
    return "other: " + top


# What echod's other processes call themselves, whatever their file is named.
HELPER_COMMS = ("echod-acceptor", "echod-conn")


def parse_samples(perf_data, comm):
    """[(pid, comm, [frames...])] for samples of processes named @comm, or as
    echod's acceptor and connection processes name themselves, in our PID
    namespace (perf gives PID 0 to any other)."""
    text = subprocess.run(["perf", "script", "-i", perf_data, "-F", "comm,pid,ip,sym"],
                          capture_output=True, text=True).stdout
    samples = []
    for block in text.split("\n\n"):
        lines = [l for l in block.strip().splitlines() if l.strip()]
        if not lines:
            continue
        head = lines[0].split()
        if head[0] not in (comm[:15],) + HELPER_COMMS or int(head[1]) == 0:
            continue
        frames = []
        for line in lines[1:]:
            parts = line.split(None, 1)
            frames.append(re.sub(r"\+0x[0-9a-f]+$", "", parts[1]) if len(parts) > 1 else "?")
        samples.append((int(head[1]), head[0], frames))
    return samples


def acceptor_pids(pid):
    """The PIDs of @pid's children that call themselves echod-acceptor."""
    found = set()
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return found
    for child in children:
        try:
            with open("/proc/%d/comm" % child) as f:
                if f.read().strip() == "echod-acceptor":
                    found.add(child)
        except OSError:
            pass
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--frequency", type=int, default=4000)
    p.add_argument("argv", nargs="+", help="the server; {port} is replaced")
    args = p.parse_args()
    driver.check_isolated()
    os.makedirs(args.out, exist_ok=True)
    driver.setup_namespace(args.out)

    port = 2500
    argv = [a.format(port=port) for a in args.argv]
    # perf -a samples the whole machine, where other programs may bear the
    # server's name: run a copy under a name of its own, and count only that.
    comm = "pf%04x-" % int.from_bytes(os.urandom(2), "big") + os.path.basename(argv[0])[:8]
    copy = os.path.join("/run", comm)
    program = shutil.which(argv[0]) or argv[0]
    shutil.copy(program, copy)
    os.chmod(copy, 0o755)
    # echod runs the acceptor beside its own executable: the copy's too.
    acceptor = os.path.join(os.path.dirname(program), "echod-acceptor")
    if os.path.exists(acceptor):
        shutil.copy(acceptor, os.path.join("/run", "echod-acceptor"))
    shown_argv = argv
    argv = [copy] + argv[1:]
    server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    perf_data = os.path.join(args.out, "perf.data")
    try:
        if not driver.probe(port):
            sys.exit("profile: %s does not serve on port %d" % (argv[0], port))
        time.sleep(0.3)
        acceptors = acceptor_pids(server.pid)
        load = subprocess.run(
            ["perf", "record", "-q", "-a", "-g", "-e", "cpu-clock", "-F", str(args.frequency),
             "-o", perf_data, "--",
             os.path.join(args.bin, "echo-load"), "--mode", "crr", "--server", comm,
             "--connect", "127.0.0.1:%d" % port, "--concurrency", str(args.concurrency),
             "--duration", str(args.duration)],
            capture_output=True, text=True)
    finally:
        driver.stop(server)
    result = driver.parse_result(load.stdout)
    if not result:
        sys.exit("profile: echo-load gave no result: %s" % load.stderr)
    n_conn = int(result["connections"])

    samples = parse_samples(perf_data, comm)
    usec_per_sample = 1e6 / args.frequency
    phases = collections.Counter()
    for pid, name, frames in samples:
        # By PID: a child is named echod-acceptor until it names itself.
        who = ("parent" if pid == server.pid else
               "acceptor" if pid in acceptors else "child")
        phases[(who, classify(frames))] += 1

    total = sum(phases.values())
    print("%s: %s connections/s over %s s, %d connections; %d samples of '%s' at %d Hz" %
          (" ".join(shown_argv), result["conn_per_s"], result["duration_s"], n_conn, total, comm,
           args.frequency))
    print("CPU per connection: %.1f µs\n" % (total * usec_per_sample / n_conn))
    print("| process | phase | µs per connection | share |")
    print("|---|---|---|---|")
    shown = 0
    for (who, phase), n in phases.most_common():
        if n * 100 < total and shown >= 12:
            continue
        shown += 1
        print("| %s | %s | %.1f | %.1f%% |" % (who, phase, n * usec_per_sample / n_conn,
                                              100.0 * n / total))
    print("\nperf data: %s (perf report -i %s --comm %s)" % (perf_data, perf_data, comm[:15]))


if __name__ == "__main__":
    main()
