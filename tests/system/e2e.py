#!/usr/bin/env python3
"""End to end: the echod package in a real systemd.

Boots systemd with systemd-nspawn over an overlay of / (the host stays
untouched), installs the .deb with dpkg -i inside, and checks from the host
what a user would see: the socket enabled and listening, echoes right, the
service's STATUS, the sandbox, journal fields and catalog, restarts without a
refused client, 1024 children at once, stop, the shipped opt-in
echo-udp.socket (enabled as echod(8) says, its reflection guard), upgrade and
purge. The container shares the host's network, so port 7 (TCP and UDP) must
be free on the host.

Usage: e2e.py SOURCE_DIR
The package is $ECHOD_DEB, or built from SOURCE_DIR (dpkg-buildpackage, tests
off) when that is unset. Exit status: 0 pass, 1 fail, 77 skip (not root, no
systemd-nspawn, port 7 busy, ...).
"""

import contextlib
import glob
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
PORT = 7
MACHINE = "echod-e2e"
MSG_LISTENING = "95d121a181f543a795c4bfe3e36d6340"
MSG_OPENED = "213385c75a76402abd41a652826cb8ca"
MSG_CLOSED = "d867db7ba5064dbd997c244f76604a35"
MSG_STOPPING = "3c542865ed1d4499bc7a6cb8bdbab9e5"
MSG_CHILD_KILLED = "9ce42b2658d64d6daffccd679f5d3f67"
MSG_LIMIT_REACHED = "eae113e6e4ba436fb53f1e734794dc7a"
MSG_DATAGRAM_DROPPED = "4f52a7c421444f5997e6f3f1055cf9a7"
LOOPBACK_V4 = ("127.0.0.1", "::ffff:127.0.0.1")
EXPECTED_EXPOSURE = "0.2"


def log(text):
    print(text, flush=True)


FAILURES = []


def check(condition, what, details=""):
    """One assertion, printed as it passes or fails. A failure is counted and
    the test goes on, so that one run shows everything that is wrong."""
    if condition:
        log(f"ok - {what}")
    else:
        log(f"not ok - {what}" + (f"\n{details}" if details else ""))
        FAILURES.append(what)
    return condition


def require(condition, what, details=""):
    """An assertion the following steps depend on: a failure ends the test."""
    if not check(condition, what, details):
        raise AssertionError(what)


def wait_for(predicate, timeout, interval=0.1):
    """Polls @predicate until it returns something true; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def run(cmd, timeout=120, check_status=True, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check_status and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit status {result.returncode}\n"
                             f"{result.stdout}{result.stderr}")
    return result


# The host side: what it takes to run at all.

def local_ports(protocol, state=None):
    """Local ports of @protocol's sockets (in @state, "0A" for LISTEN), read
    from /proc: the container shares our network namespace, so its sockets
    show here too."""
    ports = set()
    for path in (f"/proc/net/{protocol}", f"/proc/net/{protocol}6"):
        with contextlib.suppress(FileNotFoundError), open(path) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if state is None or fields[3] == state:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def port_listening():
    return PORT in local_ports("tcp", "0A")


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


def build_deb(source_dir, scratch):
    """dpkg-buildpackage in a copy of the tracked (and new, unignored) files,
    tests off: the package's build-time suites are not this test's job."""
    copy = os.path.join(scratch, "source", "echod")
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
    log("building the package (dpkg-buildpackage -us -uc -b, nocheck)...")
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck")
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=copy, env=env, timeout=600)
    debs = glob.glob(os.path.join(scratch, "source", "echod_*.deb"))
    if len(debs) != 1:
        raise AssertionError(f"dpkg-buildpackage made {debs}, not one echod .deb")
    return debs[0]


class Container:
    """A systemd booted in systemd-nspawn over an overlay of /; every command
    runs inside through nsenter. close() undoes everything, on every path."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.root = os.path.join(scratch, "root")
        self.nspawn = None
        self.leader = None
        self.mounted = False

    def mount(self):
        for d in ("upper", "work", "root"):
            os.makedirs(os.path.join(self.scratch, d))
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir=/,upperdir={self.scratch}/upper,workdir={self.scratch}/work",
             self.root])
        self.mounted = True

    def boot(self):
        self.console = open(os.path.join(self.scratch, "console.log"), "w")
        # basic.target and masked timers: the host's enabled services (which
        # would share its network) and apt's timers stay off.
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "-D", self.root, "--register=no", "--keep-unit",
             "-M", MACHINE, "-b", "--console=passive", "--",
             "systemd.firstboot=off", "systemd.unit=basic.target",
             "systemd.mask=timers.target"],
            stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT)
        # The first child of nspawn is a short-lived helper: wait for systemd.
        self.leader = wait_for(self.find_leader, 30)
        if not self.leader:
            raise AssertionError("the container's systemd did not start\n" + self.console_log())
        # Until systemd has set up its private socket, systemctl cannot ask
        # it anything: retry while it answers nothing.
        def system_state():
            result = self.run("systemctl", "is-system-running", "--wait",
                              check_status=False, timeout=90)
            self.last_answer = result.stdout + result.stderr
            return result.stdout.strip()
        state = wait_for(system_state, 90, 0.2)
        if state not in ("running", "degraded"):
            raise AssertionError(f"the container's systemd is {state!r}: {self.last_answer}\n"
                                 + self.console_log())
        log(f"container booted (systemd is {state})")

    def find_leader(self):
        if self.nspawn.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited with {self.nspawn.returncode}\n"
                                 + self.console_log())
        found = subprocess.run(["pgrep", "-P", str(self.nspawn.pid), "-x", "systemd"],
                               capture_output=True, text=True).stdout.split()
        return int(found[0]) if found else None

    def console_log(self):
        with open(os.path.join(self.scratch, "console.log")) as f:
            return f.read()[-4000:]

    def run(self, *cmd, check_status=True, timeout=60):
        return run(["nsenter", "-t", str(self.leader), "-a", *cmd],
                   check_status=check_status, timeout=timeout)

    def systemctl(self, *args, check_status=True):
        return self.run("systemctl", "--no-pager", *args, check_status=check_status)

    def show(self, unit, *props):
        out = self.systemctl("show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def state(self, verb, unit):
        return self.systemctl(verb, unit, check_status=False).stdout.strip()

    def close(self):
        if self.nspawn and self.nspawn.poll() is None:
            # SIGTERM asks the container's systemd to power off.
            self.nspawn.terminate()
            try:
                self.nspawn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.nspawn.kill()
                self.nspawn.wait()
        if self.mounted:
            if subprocess.run(["umount", self.root]).returncode != 0:
                subprocess.run(["umount", "--lazy", self.root])
            self.mounted = False


# Clients. Every byte goes to 127.0.0.1:7, the host's loopback.

def connect(timeout=10):
    return socket.create_connection(("127.0.0.1", PORT), timeout=timeout)


def echo_exchange(sock, data):
    """Sends @data (from a thread, so that a large echo cannot deadlock on
    full buffers), closes our sending side, reads until end of stream."""
    def send():
        with contextlib.suppress(OSError):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    sender.join()
    return b"".join(chunks)


def echo_once(data):
    with connect() as sock:
        port = sock.getsockname()[1]
        return echo_exchange(sock, data), port


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


# The checks, in the order a user meets them.

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


def status_text(c):
    return c.show("echo.service", "StatusText")["StatusText"]


def wait_status(c, expected):
    """STATUS= goes out at most once a second: allow a few."""
    return wait_for(lambda: status_text(c) == expected, 5) or status_text(c)


def check_first_echo(c):
    data = os.urandom(256 * 1024)
    echoed, _ = echo_once(data)
    require(echoed == data, "256 KiB of random data come back exactly")
    props = c.show("echo.service", "ActiveState", "Type", "MainPID", "NRestarts")
    check(props["ActiveState"] == "active" and props["Type"] == "notify",
          "echo.service was started by the connection, Type=notify", str(props))
    text = wait_status(c, "0 active, 1 total connections")
    check(text is True, "StatusText: 0 active, 1 total connections", f"got {text!r}")


def check_status_counts(c):
    socks = [connect() for _ in range(3)]
    try:
        for s in socks:
            s.sendall(b"x")
        check(all(recv_exactly(s, 1) == b"x" for s in socks), "3 held-open connections echo")
        text = wait_status(c, "3 active, 4 total connections")
        check(text is True, "StatusText: 3 active, 4 total connections", f"got {text!r}")
        main_pid = c.show("echo.service", "MainPID")["MainPID"]
        children = c.run("pgrep", "-P", main_pid, "-x", "echod", check_status=False).stdout.split()
        check(len(children) == 3, "one echod child process per open connection", str(children))
    finally:
        for s in socks:
            s.close()
    text = wait_status(c, "0 active, 4 total connections")
    check(text is True, "StatusText: 0 active, 4 total connections", f"got {text!r}")


def check_sandbox(c):
    main_pid = c.show("echo.service", "MainPID")["MainPID"]
    status = c.run("cat", f"/proc/{main_pid}/status").stdout
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uid = int(fields["Uid"].split()[0])
    check(uid != 0, f"echod runs as a dynamic user (uid {uid}), not root")
    check(int(fields["CapEff"], 16) == 0 and int(fields["CapBnd"], 16) == 0,
          "echod has no capabilities", fields["CapEff"] + fields["CapBnd"])
    check(fields["NoNewPrivs"].strip() == "1" and fields["Seccomp"].strip() == "2",
          "no new privileges, system call filter active")
    own_net = c.run("readlink", f"/proc/{main_pid}/ns/net").stdout
    pid1_net = c.run("readlink", "/proc/1/ns/net").stdout
    check(own_net != pid1_net, "echod has its own network namespace (PrivateNetwork=) "
          "and still serves the inherited socket")
    offline = run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                   f"{SOURCE_DIR}/systemd/echo.service"]).stdout
    online = c.run("systemd-analyze", "security", "--no-pager", "echo.service").stdout
    exposure = re.findall(r"Overall exposure level for echo.service: (\S+)", online)
    expected = re.findall(r"Overall exposure level for echo.service: (\S+)", offline)
    check(exposure == expected == [EXPECTED_EXPOSURE],
          f"systemd-analyze security inside: exposure {exposure}, "
          f"as offline on the source unit ({expected})")


def journal(c, *args):
    out = c.run("journalctl", "--no-pager", "-u", "echo.service", *args).stdout
    return out


def journal_entries(c):
    return [json.loads(line) for line in journal(c, "-o", "json").splitlines() if line]


def restart_service(c):
    # Quick restarts hit the start limit (5 in 10 s), which would fail the
    # socket too: clear it first.
    c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
    c.systemctl("restart", "echo.service")


def check_debug_journal(c):
    c.run("sh", "-c", "echo 'ECHOD_OPTS=\"--log-level=debug\"' >>/etc/default/echod")
    restart_service(c)
    check(c.state("is-active", "echo.service") == "active",
          "echo.service restarted with ECHOD_OPTS=--log-level=debug")
    cmdline = c.run("cat", f"/proc/{c.show('echo.service', 'MainPID')['MainPID']}/cmdline").stdout
    check(cmdline.split("\0")[1:2] == ["--log-level=debug"],
          "ECHOD_OPTS reaches echod's command line", repr(cmdline))

    # Several connections: each one's events must be there, with the fields
    # a user filters on.
    sent, exact = {}, 0
    for _ in range(20):
        data = os.urandom(random.randint(1, 8192))
        echoed, client_port = echo_once(data)
        exact += echoed == data
        sent[str(client_port)] = len(data)
    check(exact == len(sent), f"{len(sent)} echoes with debug logging on, {exact} exact")

    def events(entries, message_id):
        return {e.get("REMOTE_PORT"): e for e in entries
                if e.get("MESSAGE_ID") == message_id and e.get("REMOTE_PORT") in sent}

    def all_logged():
        entries = [json.loads(line) for line in c.run(
            "journalctl", "--no-pager", "-o", "json", f"MESSAGE_ID={MSG_CLOSED}").stdout.splitlines()]
        return len(events(entries, MSG_CLOSED)) == len(sent)
    wait_for(all_logged, 5, 0.25)      # journald is asynchronous
    entries = journal_entries(c)
    opened, closed = events(entries, MSG_OPENED), events(entries, MSG_CLOSED)

    good_opened = [p for p, e in opened.items()
                   if e.get("REMOTE_ADDR") in LOOPBACK_V4 and e.get("PRIORITY") == "7"
                   and int(e.get("CHILD_PID", 0)) > 0]
    check(len(good_opened) == len(sent),
          f"journalctl -u echo.service: a connection-opened event (MESSAGE_ID, "
          f"REMOTE_ADDR, REMOTE_PORT, CHILD_PID, PRIORITY=7) for each of {len(sent)} "
          f"connections: {len(good_opened)}")
    good_closed = [p for p, e in closed.items()
                   if e.get("BYTES") == str(sent[p]) and int(e.get("DURATION_USEC", 0)) > 0
                   and p in opened and e.get("CHILD_PID") == opened[p].get("CHILD_PID")
                   and e.get("REMOTE_ADDR") == opened[p].get("REMOTE_ADDR")]
    if not check(len(good_closed) == len(sent),
                 f"journalctl -u echo.service: a connection-closed event (BYTES, "
                 f"DURATION_USEC, the same CHILD_PID and REMOTE_ADDR) for each of {len(sent)} "
                 f"connections: {len(good_closed)}"):
        unattributed = [e for e in (json.loads(line) for line in c.run(
            "journalctl", "--no-pager", "-o", "json", f"MESSAGE_ID={MSG_CLOSED}")
            .stdout.splitlines()) if e.get("REMOTE_PORT") in sent and "_SYSTEMD_UNIT" not in e]
        log(f"  {len(unattributed)} of them are in the journal without _SYSTEMD_UNIT (the "
            "child exited before journald looked up its cgroup), e.g.:\n  "
            + (json.dumps(unattributed[0]) if unattributed else "none"))
    check(any(e.get("MESSAGE_ID") == MSG_LISTENING for e in journal_entries(c)),
          "listening event logged at start")
    explained = journal(c, "-x")
    check("forked child process" in explained and "Defined-By: echod" in explained,
          "journalctl -x shows the catalog's explanation", explained[-2000:])


def check_restart_under_load(c):
    """Clients keep connecting while the service restarts three times: the
    socket stays open in PID 1, so no client may notice."""
    results = {"ok": 0, "refused": 0, "wrong": 0, "error": 0}
    errors = []
    done = threading.Event()

    def client():
        while not done.is_set():
            data = os.urandom(random.randint(1, 4096))
            try:
                echoed, _ = echo_once(data)
                results["ok" if echoed == data else "wrong"] += 1
                if echoed != data:
                    errors.append(f"{len(echoed)} of {len(data)} bytes")
            except ConnectionRefusedError:
                results["refused"] += 1
            except OSError as e:
                results["error"] += 1
                errors.append(repr(e))

    pids = [c.show("echo.service", "MainPID")["MainPID"]]
    # Daemon threads, stopped in any case: an interrupted test must not
    # wait for clients that would go on forever.
    clients = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for t in clients:
        t.start()
    try:
        for _ in range(3):
            time.sleep(0.3)
            restart_service(c)
            pids.append(c.show("echo.service", "MainPID")["MainPID"])
        time.sleep(0.3)
    finally:
        done.set()
        for t in clients:
            t.join()
    total = sum(results.values())
    check(len(set(pids)) == 4, f"three restarts, four main processes: {pids}")
    check(total >= 300, f"{total} connections during the restarts")
    if not check(results["ok"] == total,
                 f"none refused, none cut, every echo exact: {results}", str(errors[:10])):
        cut = [e["MESSAGE"] for e in journal_entries(c)
               if e.get("MESSAGE_ID") == MSG_STOPPING or
               (e.get("MESSAGE_ID") == MSG_CLOSED and e.get("BYTES") == "0")]
        log("  from the journal, the stops and the connections closed after 0 bytes:\n  "
            + "\n  ".join(cut))


def check_many_children(c):
    """The default --max-connections (1024) at once: TasksMax= and the system
    call filter let echod fork that many."""
    n = 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    # STATUS= lags by up to a second: take the count once it has settled.
    def settled_total():
        first = status_text(c)
        time.sleep(1.2)
        return first == status_text(c) and first.startswith("0 active") and first
    text = wait_for(settled_total, 10)
    total_before = int(text.split(", ")[1].split()[0]) if text else 0
    socks = []
    try:
        for _ in range(n):
            socks.append(connect())
        for s in socks:
            s.sendall(b"y")
        check(all(recv_exactly(s, 1) == b"y" for s in socks),
              f"{n} simultaneous connections all echo")
        expected = f"{n} active, {total_before + n} total connections"
        text = wait_status(c, expected)
        check(text is True, f"StatusText: {expected}", f"got {text!r}")
    finally:
        for s in socks:
            s.close()
    expected = f"0 active, {total_before + n} total connections"
    text = wait_for(lambda: status_text(c) == expected, 15)
    check(text, f"all {n} children exit: {expected}", status_text(c))
    entries = journal_entries(c)
    check(any(e.get("MESSAGE_ID") == MSG_LIMIT_REACHED for e in entries),
          "the connection limit (1024) is logged as reached")
    # echod's own entries: in this container, systemd itself warns that it
    # cannot set up the loopback device of PrivateNetwork= (nspawn leaves it
    # no CAP_NET_ADMIN), which echod never uses.
    bad = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "echod" and
           (e.get("PRIORITY") in ("0", "1", "2", "3", "4") or e.get("MESSAGE_ID") == MSG_CHILD_KILLED)]
    check(not bad, "no error, no warning (failed fork or accept), no killed child in the journal",
          "\n".join(e.get("MESSAGE", "") for e in bad[:10]))


def check_stop_and_start(c):
    c.systemctl("stop", "echo.socket", "echo.service")
    check(c.run("pgrep", "-x", "echod", check_status=False).returncode == 1,
          "stop leaves no echod process")
    check(not port_listening(), f"port {PORT} is closed after stop")
    c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
    c.systemctl("start", "echo.socket")
    data = os.urandom(4096)
    check(echo_once(data)[0] == data, "start echo.socket again: echoes again")
    check(c.state("is-active", "echo.service") == "active", "echo.service active again")


def privileged_udp_socket():
    """A UDP socket on a free port below 1024 (we are root): the source port
    of a spoofed datagram aimed at another service."""
    for port in range(1000, 600, -1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
            return s
        except OSError:
            s.close()
    raise AssertionError("no free UDP port between 601 and 1000")


def udp_exchange(sock, data, timeout=5):
    """Sends @data to port 7; returns (reply, source), or (None, None) when
    nothing came back within @timeout."""
    sock.settimeout(timeout)
    sock.sendto(data, ("127.0.0.1", PORT))
    try:
        return sock.recvfrom(65536)
    except socket.timeout:
        return None, None


def check_udp_opt_in(c):
    """The shipped, opt-in echo-udp.socket, enabled as echod(8) says: the
    same sandboxed service echoes datagrams through it (RestrictAddressFamilies=
    AF_UNIX filters only new sockets), and the reflection guard refuses a
    source port below 1024. It stays enabled for the upgrade and purge checks."""
    # systemd refuses to start a socket whose service is running, and a
    # running service would not get the new socket: stop it first.
    c.systemctl("stop", "echo.service")
    c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
    c.systemctl("enable", "--now", "echo-udp.socket")
    check(c.state("is-enabled", "echo-udp.socket") == "enabled"
          and c.state("is-active", "echo-udp.socket") == "active",
          "systemctl enable --now echo-udp.socket: enabled and active")
    listen = c.show("echo-udp.socket", "Listen")["Listen"]
    check(listen == "[::]:7 (Datagram)", "echo-udp.socket listens on [::]:7, IPv4 and IPv6",
          listen)
    data = os.urandom(1200)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        reply, source = udp_exchange(s, data)
        source_port = s.getsockname()[1]
    check(reply == data and source == ("127.0.0.1", PORT),
          f"a datagram from port {source_port} starts echo.service and comes back whole, "
          "from port 7", repr(source))
    data = os.urandom(4096)
    check(echo_once(data)[0] == data, "the same service still echoes TCP")
    text = wait_status(c, "0 active, 1 total connections, 1 datagrams echoed, 0 dropped")
    check(text is True, "StatusText counts the connection and the datagram: one service has "
          "both sockets", f"got {text!r}")

    with privileged_udp_socket() as low:
        low_port = low.getsockname()[1]
        reply, _ = udp_exchange(low, b"reflect me", timeout=2)
    check(reply is None, f"a datagram from source port {low_port} gets no reply", repr(reply))
    text = wait_status(c, "0 active, 1 total connections, 1 datagrams echoed, 1 dropped")
    check(text is True, "StatusText counts it as dropped", f"got {text!r}")

    def dropped_logged():
        return [e for e in journal_entries(c) if e.get("MESSAGE_ID") == MSG_DATAGRAM_DROPPED
                and e.get("REMOTE_PORT") == str(low_port)]
    entries = wait_for(dropped_logged, 5, 0.25)
    check(entries and entries[0].get("REMOTE_ADDR") in LOOPBACK_V4
          and entries[0].get("PRIORITY") == "5",
          "the drop is in the journal (MESSAGE_ID, REMOTE_ADDR, REMOTE_PORT, PRIORITY=5)",
          json.dumps(entries[:1]))


def check_upgrade(c):
    c.run("dpkg", "-i", "/srv/echod-e2e/echod.deb", timeout=120)
    check(c.state("is-enabled", "echo.socket") == "enabled"
          and c.state("is-active", "echo.socket") == "active",
          "reinstalling (upgrade path) keeps echo.socket enabled and active")
    data = os.urandom(4096)
    check(echo_once(data)[0] == data, "echoes after the upgrade")
    check(c.state("is-enabled", "echo-udp.socket") == "enabled"
          and c.state("is-active", "echo-udp.socket") == "active",
          "the upgrade keeps the opt-in echo-udp.socket enabled and active",
          c.systemctl("status", "echo-udp.socket", check_status=False).stdout)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        reply, _ = udp_exchange(s, data[:1000])
    check(reply == data[:1000], "datagrams are echoed after the upgrade")
    # The service may still hold a UDP socket that systemd closed: only a
    # new instance shows whether systemd still passes it.
    restart_service(c)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        reply, _ = udp_exchange(s, data[:1000])
    check(reply == data[:1000], "and by a restarted echo.service after the upgrade")
    conf = c.run("cat", "/etc/default/echod").stdout
    check("--log-level=debug" in conf, "the upgrade keeps the edited /etc/default/echod")


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


def run_checks(c):
    check_installed(c)
    check_first_echo(c)
    check_status_counts(c)
    check_sandbox(c)
    check_debug_journal(c)
    check_restart_under_load(c)
    check_many_children(c)
    check_stop_and_start(c)
    check_udp_opt_in(c)
    check_upgrade(c)
    check_purge(c)


def main(argv):
    global SOURCE_DIR
    SOURCE_DIR = os.path.abspath(argv[1] if len(argv) > 1 else
                                 os.path.join(os.path.dirname(__file__), "..", ".."))
    reason = reason_not_to_run()
    if reason:
        log(f"SKIP: {reason}")
        return SKIP

    # A timeout in meson test arrives as SIGTERM: unwind through the cleanup.
    def interrupted(signo, _frame):
        raise SystemExit(f"interrupted by signal {signo}")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)

    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="echod-e2e.")
    container = Container(scratch)
    try:
        deb = os.environ.get("ECHOD_DEB") or build_deb(SOURCE_DIR, scratch)
        log(f"package: {deb}")
        container.mount()
        os.makedirs(os.path.join(container.root, "srv", "echod-e2e"))
        shutil.copy(deb, os.path.join(container.root, "srv", "echod-e2e", "echod.deb"))
        container.boot()
        try:
            run_checks(container)
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
    log(f"pass: end-to-end in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
