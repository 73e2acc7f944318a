#!/usr/bin/env python3
"""Runs echod and its peers one after another and compares them.

Started by bench/run inside `unshare --net --pid --mount --fork`: this
refuses to run anywhere else, because inetd, xinetd and tcpserver must
never listen outside that namespace. Per repetition, each server in turn is
started on a loopback port, loaded by echo-load in every mode, and stopped;
the RESULT lines go to DIR/raw.txt, the medians and ratios to DIR/table.md
and stdout, and the plots to DIR/*.svg (and to docs/ with --docs).
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INETD_PORT = 7          # internal echo: inetd and xinetd serve it by name only
FIRST_PORT = 2000       # below the client's ephemeral range, set to 10000-65535
DOCS_BEGIN = "<!-- bench:table:begin -->"
DOCS_END = "<!-- bench:table:end -->"


# ---------------------------------------------------------------- servers

class Server:
    """One server under test: how to start it on a port, and what it is."""

    def __init__(self, name, argv, note, fixed_port=None, config=None):
        self.name = name
        self.argv = argv                # "{port}" and "{config}" are filled in
        self.note = note
        self.fixed_port = fixed_port
        self.config = config            # (file name, text with {port}) or None

    def command(self, port, config_path):
        return [a.format(port=port, config=config_path) for a in self.argv]


XINETD_CONF = """\
# xinetd's internal echo with every throttle raised, so that capacity is
# measured, not policy, and nothing logged or looked up per connection.
defaults
{{
        instances       = UNLIMITED
        per_source      = UNLIMITED
        cps             = 1000000 1
        log_type        = FILE /dev/null
        log_on_success  =
        log_on_failure  =
}}

service echo
{{
        type            = INTERNAL
        id              = echo-stream
        socket_type     = stream
        protocol        = tcp
        wait            = no
        user            = root
        bind            = 127.0.0.1
        port            = {port}
        instances       = UNLIMITED
        per_source      = UNLIMITED
        cps             = 1000000 1
        flags           = NOLIBWRAP REUSE
}}
"""

INETD_CONF = """\
# openbsd-inetd's internal echo; .1000000 raises the per-minute invocation
# limit (default 256) that would otherwise shut the service for ten minutes.
127.0.0.1:echo stream tcp4 nowait.1000000 root internal
"""


def make_servers(args, bin_dir):
    max_conn = "20000"
    servers = [
        Server("echod", [args.echod, "--listen", "127.0.0.1:{port}",
                         "--max-connections", max_conn],
               "echod --listen, default log level"),
        Server("echod-activated",
               ["systemd-socket-activate", "--listen", "127.0.0.1:{port}",
                args.echod, "--max-connections", max_conn],
               "echod given its listener by systemd-socket-activate (Accept=no)"),
    ]
    for spec in args.echod_variant:
        name, _, path = spec.partition("=")
        servers.append(Server(name, [path, "--listen", "127.0.0.1:{port}",
                                     "--max-connections", max_conn],
                              "echod variant " + path))
    servers += [
        Server("epoll", [os.path.join(bin_dir, "echo-epoll"), "127.0.0.1:{port}"],
               "bench/echo-epoll.c: one thread, epoll, no fork (the ceiling)"),
        Server("sketch", [os.path.join(bin_dir, "echo-sketch"), "127.0.0.1:{port}"],
               "bench/echo-sketch.c: accept + fork, 1 KiB blocking loop, SIGCHLD ignored"),
        Server("sketch-reap", [os.path.join(bin_dir, "echo-sketch-reap"), "127.0.0.1:{port}"],
               "bench/echo-sketch.c -DSKETCH_REAP: the same, reaping in a SIGCHLD handler"),
        Server("xinetd", [args.xinetd, "-dontfork", "-f", "{config}",
                          "-pidfile", "/run/echod-bench-xinetd.pid"],
               "xinetd internal echo", fixed_port=INETD_PORT,
               config=("xinetd.conf", XINETD_CONF)),
        Server("openbsd-inetd", ["/usr/sbin/inetd", "-i", "-q", "4096",
                                 "-R", "100000000", "{config}"],
               "openbsd-inetd internal echo", fixed_port=INETD_PORT,
               config=("inetd.conf", INETD_CONF)),
        Server("socat", ["socat", "TCP4-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,"
                         "backlog=4096", "PIPE"],
               "socat fork + PIPE"),
        Server("tcpserver", ["tcpserver", "-H", "-R", "-P", "-l0", "-c", max_conn,
                             "-b", "4096", "127.0.0.1", "{port}", "cat"],
               "ucspi-tcp tcpserver + cat"),
        Server("socket-activate", ["systemd-socket-activate", "--accept", "--inetd",
                                   "--listen", "127.0.0.1:{port}", "cat"],
               "systemd-socket-activate --accept --inetd + cat"),
    ]
    if args.servers:
        wanted = args.servers.split(",")
        unknown = set(wanted) - {s.name for s in servers}
        if unknown:
            sys.exit("driver: unknown server(s): " + ", ".join(sorted(unknown)))
        servers = [s for s in servers if s.name in wanted]
    return servers


# ------------------------------------------------------------ the namespace

def run(argv, **kw):
    return subprocess.run(argv, check=True, **kw)


def check_isolated():
    """Refuses to run unless in the namespaces bench/run made: not the
    host's network or PID namespace, and no interface but lo."""
    for kind in ("net", "pid"):
        host = os.environ.get("ECHOD_BENCH_HOST_%sNS" % kind.upper())
        here = str(os.stat("/proc/self/ns/" + kind).st_ino)
        if not host or host == here:
            sys.exit("driver: not in a private %s namespace: use bench/run" % kind)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
    if names != ["lo"]:
        sys.exit("driver: interfaces other than lo are visible: %s" % names)


def sysctl_write(name, value):
    path = "/proc/sys/" + name.replace(".", "/")
    with open(path, "w") as f:
        f.write(str(value))


def setup_namespace(out_dir):
    """lo up, the per-netns TCP settings, a private /run and a resolv.conf
    that points at 127.0.0.1; returns what was set, for the report."""
    notes = []
    run(["ip", "link", "set", "lo", "up"])
    if os.path.exists("/proc/sys/net/ipv4/tcp_tw_reuse_delay"):
        sysctl_write("net.ipv4.tcp_tw_reuse_delay", 1)
        notes.append("net.ipv4.tcp_tw_reuse_delay=1 (ms; kernel default 1000)")
    else:
        sysctl_write("net.ipv4.tcp_tw_reuse", 1)
        notes.append("net.ipv4.tcp_tw_reuse=1 (no tcp_tw_reuse_delay on this kernel)")
    sysctl_write("net.ipv4.ip_local_port_range", "10000 65535")
    notes.append("net.ipv4.ip_local_port_range=10000 65535")
    run(["mount", "-t", "tmpfs", "-o", "size=16m", "echod-bench", "/run"])
    with open("/run/resolv.conf", "w") as f:
        f.write("# echod bench: no name leaves this namespace\nnameserver 127.0.0.1\n")
    run(["mount", "--bind", "/run/resolv.conf", "/etc/resolv.conf"])
    notes.append("tmpfs on /run; /etc/resolv.conf bind-mounted to 'nameserver 127.0.0.1'")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    notes.append("RLIMIT_NOFILE=%d for every process started" % hard)
    return notes


# -------------------------------------------------------------- processes

def read_stat(pid):
    """(ppid, starttime) of @pid, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def descendants(root):
    """{pid: starttime} of @root and everything below it."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = read_stat(int(entry))
            if st:
                parent[int(entry)] = st
    tree = {}
    if root in parent:
        tree[root] = parent[root][1]
    grew = True
    while grew:
        grew = False
        for pid, (ppid, start) in parent.items():
            if pid not in tree and ppid in tree:
                tree[pid] = start
                grew = True
    return tree


def probe(port, timeout=10.0):
    """Waits until the server echoes one byte; returns True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                s.sendall(b"?")
                if s.recv(1) == b"?":
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def settle(pid, idle_count, timeout=20.0):
    """Waits until the server's tree is back to its idle size: children of
    the last run still exiting would otherwise count in the next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(descendants(pid)) > idle_count:
        time.sleep(0.05)
    time.sleep(0.2)


def stop(proc):
    """SIGTERM, then SIGKILL, to the server we started and to whatever it
    started, each by PID (and start time, against PID reuse)."""
    tree = descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=12)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pid, start in tree.items():
        st = read_stat(pid)
        if pid != proc.pid and st and st[1] == start:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ------------------------------------------------------------------- loads

RESULT_RE = re.compile(r"^RESULT (.*)$", re.M)


def parse_result(text):
    m = RESULT_RE.search(text)
    if not m:
        return None
    fields = {}
    for item in m.group(1).split():
        key, _, value = item.partition("=")
        fields[key] = value
    return fields


def loads(args, rep=0):
    """(label, echo-load arguments, needs the server's PID) for one server in
    repetition @rep. Holding 10 000 connections takes a peer up to half a
    minute to set up and tear down, and measures the same KiB every time:
    by default only the first repetition does it."""
    d = str(args.duration)
    modes = args.modes.split(",")
    out = []
    for c in args.crr if "crr" in modes else []:
        out.append(("crr c=%d" % c, ["--mode", "crr", "--concurrency", str(c),
                                     "--duration", d], False))
    if "rr" in modes:
        out.append(("rr", ["--mode", "rr", "--duration", d], False))
    if "stream" in modes:
        out.append(("stream", ["--mode", "stream", "--duration", d], False))
    for n in args.hold if "hold" in modes else []:
        if n >= 5000 and rep >= args.big_hold_reps:
            continue
        sources = str(max(1, min(8, n // 2500)))
        out.append(("hold n=%d" % n, ["--mode", "hold", "--connections", str(n),
                                      "--sources", sources], True))
    return out


def run_server(server, rep, port, args, bin_dir, out_dir, raw):
    config_path = ""
    if server.config:
        config_path = os.path.join("/run", server.config[0])
        with open(config_path, "w") as f:
            f.write(server.config[1].format(port=port))
    argv = server.command(port, config_path)
    log_path = os.path.join(out_dir, "logs", "%s-rep%d.log" % (server.name, rep))
    log = open(log_path, "w")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            cwd="/run")
    results = []
    try:
        if not probe(port):
            print("  %s: not serving on port %d, skipped (see %s)" %
                  (server.name, port, log_path), flush=True)
            return results
        time.sleep(0.3)
        idle_count = len(descendants(proc.pid))
        for label, load_args, needs_pid in loads(args, rep):
            settle(proc.pid, idle_count)
            cmd = [os.path.join(bin_dir, "echo-load"), "--server", server.name,
                   "--connect", "127.0.0.1:%d" % port] + load_args
            if needs_pid:
                cmd += ["--pid", str(proc.pid)]
            limit = args.duration + 240
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
                text, err = done.stdout, done.stderr
            except subprocess.TimeoutExpired as e:
                text, err = "", "echo-load: killed after %d s\n" % limit
            fields = parse_result(text) or {"server": server.name, "failed": label,
                                            "errors": "1"}
            fields["rep"] = str(rep)
            fields["load"] = label
            results.append(fields)
            raw.write("rep=%d %s%s" % (rep, text or "(no RESULT)\n", err))
            raw.flush()
            print("  %-16s %-12s %s" % (server.name, label, summary(fields)), flush=True)
    finally:
        stop(proc)
        log.close()
    return results


def summary(f):
    if "failed" in f:
        return "FAILED (%s) errors=%s" % (f["failed"], f.get("errors"))
    mode = f.get("mode")
    keys = {"crr": ["conn_per_s", "p50_us", "p99_us"],
            "rr": ["rt_per_s", "p50_us", "p99_us", "p999_us"],
            "stream": ["mb_per_s"],
            "hold": ["held", "pss_kib_per_conn", "private_dirty_kib_per_conn",
                     "kernel_kib_per_conn", "setup_s", "echoing"]}[mode]
    return " ".join("%s=%s" % (k, f.get(k)) for k in keys + ["errors"])


# ------------------------------------------------------------------ report

def median_of(results, server, load, key):
    values = [float(r[key]) for r in results
              if r.get("server") == server and r.get("load") == load and key in r]
    return statistics.median(values) if values else None


def errors_of(results, server):
    return sum(int(r.get("errors", "0")) for r in results if r.get("server") == server)


def cell(value, base, digits=0, lower_is_better=False):
    """'1234 (1.56×)': the median, and echod's median divided by it."""
    if value is None:
        return "—"
    text = "%.*f" % (digits, value)
    if base is None or abs(value) < 0.5:
        return text     # e.g. the epoll server's 0.0 KiB: no ratio means anything
    return "%s (%.2f×)" % (text, base / value)


def table(results, servers, args):
    loads_ = [l[0] for l in loads(args)]
    header = ["server"]
    for load in loads_:
        if load.startswith("crr"):
            header.append("%s conn/s" % load)
        elif load == "rr":
            header += ["rr round trips/s", "rr p50 / p99 / p99.9 µs"]
        elif load == "stream":
            header.append("stream MB/s")
        else:
            header.append("%s KiB/conn" % load.replace("n=", "N="))
    header.append("errors")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = {load: median_of(results, "echod", load, metric_key(load)) for load in loads_}
    for s in servers:
        row = [s.name]
        for load in loads_:
            v = median_of(results, s.name, load, metric_key(load))
            if load == "rr":
                row.append(cell(v, base[load]))
                lat = [median_of(results, s.name, "rr", k)
                       for k in ("p50_us", "p99_us", "p999_us")]
                row.append(" / ".join("—" if x is None else "%.0f" % x for x in lat))
            elif load.startswith("hold"):
                row.append(cell(v, base[load], 1))
            else:
                row.append(cell(v, base[load]))
        row.append(str(errors_of(results, s.name)))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def metric_key(load):
    if load.startswith("crr"):
        return "conn_per_s"
    if load == "rr":
        return "rt_per_s"
    if load == "stream":
        return "mb_per_s"
    return "pss_kib_per_conn"


def targets(results, servers, args):
    """The issue's targets, each with the ratio measured in this run, for
    echod and for every other echod build in the run."""
    builds = [s.name for s in servers
              if s.name.startswith("echod") or s.note.startswith("echod variant")]

    def ratio(name, load, peer):
        key = metric_key(load)
        a, b = median_of(results, name, load, key), median_of(results, peer, load, key)
        return None if a is None or not b else a / b

    def judged(value, ok, unit="×"):
        if value is None:
            return "—"
        return "%.2f%s %s" % (value, unit, "met" if ok(value) else "**missed**")

    rows = []
    for c in args.crr:
        load = "crr c=%d" % c
        rows.append(("crr C=%d: ≥ 1.15× sketch-reap (the seed design as it was)" % c,
                     [judged(ratio(b, load, "sketch-reap"), lambda v: v >= 1.15)
                      for b in builds]))
        rows.append(("crr C=%d: ≥ 1.0× sketch" % c,
                     [judged(ratio(b, load, "sketch"), lambda v: v >= 1.0) for b in builds]))
    rows.append(("stream: ≥ 0.95× epoll",
                 [judged(ratio(b, "stream", "epoll"), lambda v: v >= 0.95) for b in builds]))
    rows.append(("rr: ≥ 0.95× epoll",
                 [judged(ratio(b, "rr", "epoll"), lambda v: v >= 0.95) for b in builds]))
    if 1000 in args.hold:
        rows.append(("hold N=1000: ≤ 16 KiB Pss per connection",
                     [judged(median_of(results, b, "hold n=1000", "pss_kib_per_conn"),
                             lambda v: v <= 16, " KiB") for b in builds]))
    if 1000 in args.hold:
        rows.append(("hold N=1000: kernel ≤ 51 KiB per connection (68 less a quarter)",
                     [judged(median_of(results, b, "hold n=1000", "kernel_kib_per_conn"),
                             lambda v: v <= 51, " KiB") for b in builds]))
    if 10000 in args.hold:
        cells = []
        for b in builds:
            held = [r for r in results if r.get("server") == b and
                    r.get("load") == "hold n=10000"]
            ok = held and all(r.get("echoing") == "10000" and r.get("errors") == "0"
                              for r in held)
            cells.append("%s %s" % ("/".join(r.get("echoing", "0") for r in held) or "—",
                                    "met" if ok else "**missed**"))
        rows.append(("hold N=10000: all held, all still echoing", cells))
    lines = ["| target (ratios of medians) | " + " | ".join(builds) + " |",
             "|---|" + "---|" * len(builds)]
    lines += ["| %s | %s |" % (text, " | ".join(cells)) for text, cells in rows]
    return "\n".join(lines)


def memory_table(results, servers, args):
    """Everything hold measured, medians: Pss, Private_Dirty and the
    kernel's own per-process memory, per connection."""
    lines = ["| server | N | Pss KiB/conn | Private_Dirty KiB/conn | "
             "kernel (page tables + stacks) KiB/conn | the tree's page tables (VmPTE) KiB/conn | "
             "processes | set-up s |",
             "|---|---|---|---|---|---|---|---|"]
    for s in servers:
        for n in args.hold:
            load = "hold n=%d" % n
            vals = [median_of(results, s.name, load, k) for k in
                    ("pss_kib_per_conn", "private_dirty_kib_per_conn",
                     "kernel_kib_per_conn", "page_tables_kib_per_conn", "procs", "setup_s")]
            if vals[0] is None:
                continue
            lines.append("| %s | %d | %.1f | %.1f | %.1f | %s | %.0f | %.2f |" %
                         ((s.name, n) + tuple(vals[:3]) +
                          ("—" if vals[3] is None else "%.1f" % vals[3],) + tuple(vals[4:])))
    return "\n".join(lines)


# ------------------------------------------------------------------- plots

def write_plots(results, servers, args, out_dir):
    names = [s.name for s in servers]

    def dat(name, rows):
        path = os.path.join(out_dir, name)
        with open(path, "w") as f:
            for r in rows:
                f.write(" ".join(str(x) for x in r) + "\n")
        return path

    crr = dat("crr.dat", [['"%s"' % n] + [median_of(results, n, "crr c=%d" % c,
                                                      "conn_per_s") or 0
                                            for c in args.crr] for n in names])
    stream = dat("stream.dat", [['"%s"' % n, median_of(results, n, "stream", "mb_per_s") or 0]
                                for n in names])
    rr = dat("rr.dat", [['"%s"' % n, median_of(results, n, "rr", "rt_per_s") or 0]
                        for n in names])
    hold = dat("hold.dat", [[n] + [median_of(results, s, "hold n=%d" % n,
                                              "pss_kib_per_conn") or "NaN"
                                    for s in names] for n in args.hold])
    crr_cols = ", ".join("'%s' using %d%s title 'C=%d'" % (crr if i == 0 else "", 2 + i,
                                                            ":xtic(1)" if i == 0 else "", c)
                         for i, c in enumerate(args.crr))
    colours = ["#9400d3", "#009e73", "#56b4e9", "#e69f00", "#c0a000", "#0072b2", "#e51e10",
               "#000000", "#808080", "#a0522d", "#ff69b4", "#2e8b57"]
    hold_cols = ", ".join("'%s' using 1:%d with linespoints lw 2 pt %d lc rgb '%s' title '%s'"
                          % (hold, 2 + i, 1 + i % 13, colours[i % len(colours)], n)
                          for i, n in enumerate(names))
    common = """set terminal svg size 900,480 dynamic font 'sans,12' background '#ffffff'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set xtics nomirror rotate by -35 left offset -1,0
set bmargin 7
set key top right
"""
    script = common + """
set output '{o}/bench-crr.svg'
set title 'crr: connections per second (connect, 64 B echo, close)'
set ylabel 'connections/s'
plot {crr}
set output '{o}/bench-stream.svg'
set title 'stream: MB/s echoed over one connection'
set ylabel 'MB/s'
plot '{stream}' using 2:xtic(1) notitle
set output '{o}/bench-rr.svg'
set title 'rr: 64-byte round trips per second, one TCP_NODELAY connection'
set ylabel 'round trips/s'
plot '{rr}' using 2:xtic(1) notitle
set output '{o}/bench-hold.svg'
set style data linespoints
set xtics norotate nomirror
set bmargin 4
set logscale x
set title 'hold: Pss of the server tree per held connection'
set xlabel 'held connections N'
set ylabel 'KiB per connection'
set key outside right
set yrange [0:*]
plot {hold}
""".format(o=out_dir, crr=crr_cols, stream=stream, rr=rr, hold=hold_cols)
    path = os.path.join(out_dir, "plots.gp")
    with open(path, "w") as f:
        f.write(script)
    if subprocess.run(["gnuplot", path]).returncode != 0:
        print("driver: gnuplot failed on %s" % path)
    return ["bench-crr.svg", "bench-stream.svg", "bench-rr.svg", "bench-hold.svg"]


# --------------------------------------------------------------- versions

def first_line(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (p.stdout + p.stderr).strip()
        return text.splitlines()[0] if text else "?"
    except OSError as e:
        return "unavailable (%s)" % e


def deb_version(package):
    return first_line(["dpkg-query", "-W", "-f", "${Version}", package])


def versions(args):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return [
        ("machine", "%d CPUs (nproc), %s, Linux %s" % (os.cpu_count(), cpu,
                                                     platform.release())),
        ("echod", first_line([args.echod, "--version"]) + ", " + args.echod_commit),
        ("xinetd", first_line([args.xinetd, "-version"]) + " (Debian " +
         args.xinetd_version + ")"),
        ("openbsd-inetd", "Debian " + deb_version("openbsd-inetd")),
        ("socat", first_line(["socat", "-V"]).strip() + "; " +
         [l for l in subprocess.run(["socat", "-V"], capture_output=True,
                                    text=True).stdout.splitlines()
          if "version" in l][0].strip()),
        ("tcpserver", "ucspi-tcp, Debian " + deb_version("ucspi-tcp")),
        ("systemd-socket-activate", first_line(["systemd-socket-activate", "--version"])),
        ("cat", first_line(["cat", "--version"])),
        ("bench programs", first_line(["gcc", "--version"]) + ", -O2"),
    ]


# ------------------------------------------------------------------- main

def label_of(fields):
    """The load label ("crr c=4", "hold n=1000", ...) a RESULT line is for."""
    mode = fields.get("mode")
    if mode == "crr":
        return "crr c=%s" % fields.get("c")
    if mode == "hold":
        return "hold n=%s" % fields.get("n")
    return mode


def read_raw(path):
    """The results of an earlier run, from its raw.txt."""
    results = []
    with open(path) as f:
        for line in f:
            m = re.match(r"^rep=(\d+) RESULT (.*)$", line)
            if m:
                fields = dict(item.partition("=")[::2] for item in m.group(2).split())
                fields["rep"] = m.group(1)
                fields["load"] = label_of(fields)
                results.append(fields)
    return results


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--echod", required=True, help="the echod binary")
    p.add_argument("--echod-commit", default="", help="what the binary was built from")
    p.add_argument("--echod-variant", action="append", default=[],
                   help="NAME=PATH: another echod build to run beside it (repeatable)")
    p.add_argument("--bin", required=True, help="where echo-load, echo-epoll, echo-sketch are")
    p.add_argument("--xinetd", required=True, help="the xinetd binary")
    p.add_argument("--xinetd-version", default="?")
    p.add_argument("--out", required=True, help="results directory")
    p.add_argument("--docs", help="also write the plots and the table into this docs/")
    p.add_argument("--servers", help="comma-separated subset, in the table's order")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per crr/rr/stream run")
    p.add_argument("--crr", type=int, nargs="+", default=[4, 32])
    p.add_argument("--hold", type=int, nargs="+", default=[100, 1000, 10000])
    p.add_argument("--big-hold-reps", type=int, default=1,
                   help="repetitions that hold 5000+ connections (default 1)")
    p.add_argument("--replot", action="store_true",
                   help="run nothing: tables and plots again from --out's raw.txt")
    p.add_argument("--modes", default="crr,rr,stream,hold",
                   help="comma-separated subset of crr,rr,stream,hold")
    return p.parse_args()


def main():
    args = parse_args()
    servers = make_servers(args, args.bin)
    if args.replot:
        results = read_raw(os.path.join(args.out, "raw.txt"))
        present = {r.get("server") for r in results}
        servers = [s for s in servers if s.name in present]
        with open(os.path.join(args.out, "run.json")) as f:
            info = json.load(f)
        args.reps, args.duration = info["reps"], info["duration"]
        args.echod_commit = info.get("echod_commit", args.echod_commit)
        report(results, servers, args, info["notes"], info["run_line"], info.get("limit"))
        return
    check_isolated()
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    notes = setup_namespace(args.out)
    raw = open(os.path.join(args.out, "raw.txt"), "w")
    results = []
    started = time.monotonic()
    for rep in range(args.reps):
        port = FIRST_PORT + rep * 100
        print("repetition %d of %d" % (rep + 1, args.reps), flush=True)
        # Each repetition starts one server further on, so that no server
        # is always the first after a pause, or always follows the same one.
        for s in servers[rep % len(servers):] + servers[:rep % len(servers)]:
            port += 1
            results += run_server(s, rep, s.fixed_port or port, args, args.bin, args.out, raw)
    raw.close()
    limit = measure_limit(args.bin)
    run_line = ("Run: %s; %.0f s per crr/rr/stream run, %d repetitions, %.0f s in all." %
                (time.strftime("%Y-%m-%d %H:%M %Z"), args.duration, args.reps,
                 time.monotonic() - started))
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump({"run_line": run_line, "notes": notes, "reps": args.reps,
                   "duration": args.duration, "echod_commit": args.echod_commit,
                   "limit": limit}, f)
    report(results, servers, args, notes, run_line, limit)


# The floor under any fork per connection: fork + _exit + waitpid and nothing
# else (bench/fork-cost.c), linked as echod-acceptor is and as static-pie.
LIMIT_BUILDS = [
    ("echod", "fork-cost-dynamic",
     "linked as echod-acceptor, the process that forks, is: libc alone, fork()"),
    ("static-pie", "fork-cost-static-pie", "static-pie, libc only, fork()"),
]


def measure_limit(bin_dir, iterations=2000):
    """{name: RESULT fields} of each fork-cost build present in @bin_dir."""
    out = {}
    for name, exe, _ in LIMIT_BUILDS:
        path = os.path.join(bin_dir, exe)
        if not os.access(path, os.X_OK):
            continue
        done = subprocess.run([path, str(iterations)], capture_output=True, text=True,
                              timeout=300)
        fields = parse_result(done.stdout)
        if fields:
            out[name] = fields
    return out


def limit_lines(limit, results):
    """The "limit" paragraph: how close echod's crr rate is to the floor."""
    if not limit:
        return []
    lines = ["Limit: fork + `_exit` + waitpid, nothing else (`bench/fork-cost`, "
             "2000 × 7 rounds, median), in this run:", ""]
    lines.append("| fork-cost build | mappings | µs per fork + exit + wait | forks/s |")
    lines.append("|---|---|---|---|")
    for name, _, text in LIMIT_BUILDS:
        f = limit.get(name)
        if f:
            us = float(f["fork_exit_wait_us"])
            lines.append("| %s: %s | %s | %.1f | %.0f |" % (name, text, f["vmas"], us, 1e6 / us))
    echod = limit.get("echod")
    floor = limit.get("static-pie")
    if echod and floor:
        lines.append("")
        ratio = float(floor["fork_exit_wait_us"]) / float(echod["fork_exit_wait_us"])
        text = ("a fork + exit + wait linked as echod's acceptor is goes at %.2f× the "
                "static-pie floor's rate" % ratio)
        rates = [median_of(results, "echod", "crr c=%d" % c, "conn_per_s") for c in (4, 32)]
        if all(rates):
            us = float(echod["fork_exit_wait_us"])
            text += ("; echod's crr (C=4: %.0f, C=32: %.0f conn/s, both cores) is %.0f %% and "
                     "%.0f %% of the rate of those bare forks one after another" %
                     (rates[0], rates[1], 100 * rates[0] * us / 1e6, 100 * rates[1] * us / 1e6))
        lines.append(text + ".")
    return lines


def report(results, servers, args, notes, run_line, limit=None):
    """Prints the tables, writes table.md and the plots, and with --docs
    copies them into docs/."""
    lines = []
    big = [n for n in args.hold if n >= 5000]
    lines.append("Medians of %d repetitions%s; in brackets, echod's median divided by the "
                  "row's (above 1: echod is higher — better for rates, worse for KiB)." %
                  (args.reps, "" if not big or args.big_hold_reps >= args.reps else
                   " (hold N=%s: %d)" % ("/".join(map(str, big)),
                                         min(args.big_hold_reps, args.reps))))
    lines.append("")
    lines.append(table(results, servers, args))
    lines.append("")
    lines.append(targets(results, servers, args))
    lines.append("")
    lines.append(memory_table(results, servers, args))
    lines.append("")
    if limit:
        lines += limit_lines(limit, results)
        lines.append("")
    lines.append(run_line)
    lines.append("")
    lines.append("| | version |")
    lines.append("|---|---|")
    for name, v in versions(args):
        lines.append("| %s | %s |" % (name, v.replace("|", "/")))
    lines.append("")
    lines.append("| server | command (PORT: %d for the inetds, else %d+) |" %
                  (INETD_PORT, FIRST_PORT))
    lines.append("|---|---|")
    for s in servers:
        argv = s.command(s.fixed_port or "PORT", "CONF")
        argv = [os.path.relpath(a, ROOT) if a.startswith(ROOT) else a for a in argv]
        lines.append("| %s | `%s` |" % (s.name, " ".join(argv)))
    if notes:
        lines.append("")
        lines.append("Namespace: " + "; ".join(notes) + ".")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(text)
    print()
    print(text)

    plots = write_plots(results, servers, args, args.out)
    if args.docs:
        for name in plots:
            shutil.copy(os.path.join(args.out, name), os.path.join(args.docs, name))
        update_docs(os.path.join(args.docs, "benchmarks.md"), text)
    print("results, logs and plots: %s" % args.out)


def update_docs(path, text):
    with open(path) as f:
        doc = f.read()
    begin, end = doc.find(DOCS_BEGIN), doc.find(DOCS_END)
    if begin < 0 or end < begin:
        print("driver: %s has no %s ... %s markers; table not copied" %
              (path, DOCS_BEGIN, DOCS_END))
        return
    doc = doc[:begin + len(DOCS_BEGIN)] + "\n" + text + doc[end:]
    with open(path, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    main()
