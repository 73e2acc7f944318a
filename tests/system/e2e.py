#!/usr/bin/env python3
"""End to end: the echod package in a real systemd.

Boots systemd with systemd-nspawn over an overlay of / (the host stays
untouched), installs the .deb with dpkg -i inside, and checks from the host
what a user would see: the socket enabled and listening, echoes right, the
service's STATUS, the sandbox, journal fields and catalog, restarts without a
refused client, live connections kept through restarts by the fd store, 1024
children at once, stop, the shipped opt-in echo-udp.socket (enabled as
echod(8) says, its reflection guard), upgrade (to the same version, then to a
higher one with live connections and new ones arriving) and purge. The
container shares the host's network, so port 7 (TCP and UDP) must be free on
the host.

Usage: e2e.py SOURCE_DIR
The package is $ECHOD_DEB, or built from SOURCE_DIR (dpkg-buildpackage, tests
off) when that is unset. The package upgraded to is always built from
SOURCE_DIR, with version UPGRADE_VERSION: with $ECHOD_DEB naming an older
release, the test upgrades from that release to this tree. Exit status: 0
pass, 1 fail, 77 skip (not root, no systemd-nspawn, port 7 busy, ...).
"""

import contextlib
import glob
import json
import os
import random
import re
import resource
import select
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
# The name echod gives each connection it puts in systemd's fd store.
FD_NAME_PREFIX = "echod-conn-"
# Clients that stream through restarts and the upgrade.
N_STREAMS = 50
# The version of the package upgraded to: above debian/changelog's 0.1.0.
UPGRADE_VERSION = "0.1.0+e2e1"


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


# Long-lived clients: each sends a stream without pause and checks what comes
# back, so that a restart that loses, repeats or reorders a byte, or closes a
# connection, shows.

STREAM_CHUNK = 16 * 1024        # bytes per send()
STREAM_WINDOW = 256 * 1024      # bytes a client lets be sent and not yet echoed


class StreamingClient:
    """One connection sending a pseudo-random stream seeded by @seed, and
    checking every byte that comes back against what it sent, in order. Its
    socket is non-blocking: Streams moves the bytes."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.sock = connect()
        self.port = self.sock.getsockname()[1]
        self.fd = self.sock.fileno()
        self.sock.setblocking(False)
        self.unsent = b""
        self.owed = bytearray()         # sent, not echoed yet
        self.sent = self.checked = 0
        self.sending = True
        self.ended = None               # "eof", "reset", "wrong bytes" or an error
        self.ended_at = None
        self.wrong = None               # the first byte that came back wrong, described
        self.last_echo_at = time.monotonic()
        self.longest_wait = 0.0         # the longest time without an echoed byte while sending

    def events(self):
        if self.ended:
            return 0
        if self.sending and len(self.owed) < STREAM_WINDOW:
            return select.POLLIN | select.POLLOUT
        return select.POLLIN

    def end(self, how):
        if not self.ended:
            self.ended, self.ended_at = how, time.monotonic()

    def send(self):
        if not self.unsent:
            self.unsent = self.rng.randbytes(STREAM_CHUNK)
        try:
            n = self.sock.send(self.unsent)
        except BlockingIOError:
            return
        except (ConnectionResetError, BrokenPipeError):
            return self.end("reset")
        except OSError as e:
            return self.end(repr(e))
        self.owed += self.unsent[:n]
        self.unsent = self.unsent[n:]
        self.sent += n

    def receive(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except ConnectionResetError:
            return self.end("reset")
        except OSError as e:
            return self.end(repr(e))
        if not data:
            return self.end("eof")
        now = time.monotonic()
        if self.sending:
            self.longest_wait = max(self.longest_wait, now - self.last_echo_at)
        self.last_echo_at = now
        n = len(data)
        if self.owed[:n] != data:
            at = next((i for i in range(min(n, len(self.owed))) if self.owed[i] != data[i]),
                      len(self.owed))
            self.wrong = (f"port {self.port}: byte {self.checked + at} of the stream differs "
                          f"({n} received, {len(self.owed)} owed)")
            return self.end("wrong bytes")
        del self.owed[:n]
        self.checked += n

    def exact(self):
        """The connection ended by our FIN and its EOF, every byte sent came
        back, in order."""
        return self.ended == "eof" and not self.wrong and not self.owed and \
            self.checked == self.sent


class Streams:
    """@n StreamingClients connected at once, driven by one thread until
    close(). The other threads only read their counters, or ask them to
    finish."""

    def __init__(self, n, seed):
        self.clients = []
        self.finishing = False
        self.done = threading.Event()
        self.thread = None
        try:
            for i in range(n):
                self.clients.append(StreamingClient(seed + i))
        except BaseException:
            self.close()
            raise
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        poller, registered = select.poll(), {}
        by_fd = {client.fd: client for client in self.clients}
        while not self.done.is_set():
            for client in self.clients:
                if self.finishing and client.sending:
                    # We end our sending; echod ends its reply once the
                    # last byte is back, and that EOF ends the client.
                    client.sending = False
                    with contextlib.suppress(OSError):
                        client.sock.shutdown(socket.SHUT_WR)
                events = client.events()
                if registered.get(client.fd, 0) != events:
                    if not events:
                        poller.unregister(client.fd)
                    elif client.fd in registered:
                        poller.modify(client.fd, events)
                    else:
                        poller.register(client.fd, events)
                    registered[client.fd] = events
            for fd, revents in poller.poll(100):
                client = by_fd[fd]
                if revents & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    client.receive()
                if revents & select.POLLOUT and client.events() & select.POLLOUT:
                    client.send()

    def checked(self):
        return [client.checked for client in self.clients]

    def ended(self):
        return [client for client in self.clients if client.ended]

    def progress(self, since, timeout):
        """Waits until every client got bytes back beyond @since (its earlier
        checked()); returns the clients that did not."""
        def stuck():
            return [client for client, before in zip(self.clients, since)
                    if client.checked <= before]
        wait_for(lambda: not stuck(), timeout)
        return stuck()

    def finish(self, timeout):
        """Every client stops sending and shuts down its sending side; waits
        up to @timeout for each to get its last byte back and its EOF."""
        self.finishing = True
        wait_for(lambda: len(self.ended()) == len(self.clients), timeout)

    def bytes_checked(self):
        return sum(self.checked())

    def describe(self, clients):
        return "\n".join(f"  port {c.port}: sent {c.sent}, checked {c.checked}, owed "
                         f"{len(c.owed)}, ended: {c.ended} {c.wrong or ''}" for c in clients[:10])

    def close(self):
        self.done.set()
        if self.thread:
            self.thread.join()
        for client in self.clients:
            client.sock.close()


class NewConnections:
    """Threads that keep opening connections, each echoing up to 4 KiB and
    closing, until stop(): what a restart or an upgrade must not refuse.
    Daemon threads, stopped in any case: an interrupted test must not wait
    for clients that would go on forever."""

    def __init__(self, n_threads):
        self.results = {"ok": 0, "refused": 0, "wrong": 0, "error": 0}
        self.errors = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.client, daemon=True)
                        for _ in range(n_threads)]
        for t in self.threads:
            t.start()

    def client(self):
        while not self.done.is_set():
            data = os.urandom(random.randint(1, 4096))
            error = None
            try:
                echoed, _ = echo_once(data)
                outcome = "ok" if echoed == data else "wrong"
                if echoed != data:
                    error = f"{len(echoed)} of {len(data)} bytes"
            except ConnectionRefusedError:
                outcome = "refused"
            except OSError as e:
                outcome, error = "error", repr(e)
            with self.lock:
                self.results[outcome] += 1
                if error:
                    self.errors.append(error)

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join()
        return self.total()

    def total(self):
        with self.lock:
            return sum(self.results.values())


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
    pids = [c.show("echo.service", "MainPID")["MainPID"]]
    new_connections = NewConnections(4)
    try:
        for _ in range(3):
            time.sleep(0.3)
            restart_service(c)
            pids.append(c.show("echo.service", "MainPID")["MainPID"])
        time.sleep(0.3)
    finally:
        total = new_connections.stop()
    results = new_connections.results
    check(len(set(pids)) == 4, f"three restarts, four main processes: {pids}")
    check(total >= 300, f"{total} connections during the restarts")
    if not check(results["ok"] == total, f"none refused, none cut, every echo exact: {results}",
                 str(new_connections.errors[:10])):
        cut = [e["MESSAGE"] for e in journal_entries(c)
               if e.get("MESSAGE_ID") == MSG_STOPPING or
               (e.get("MESSAGE_ID") == MSG_CLOSED and e.get("BYTES") == "0")]
        log("  from the journal, the stops and the connections closed after 0 bytes:\n  "
            + "\n  ".join(cut))


# The fd store: what systemd holds for echo.service, and what it passes on.

def settle(get, expected, timeout=5):
    """Polls get() until it returns @expected, for up to @timeout seconds;
    returns its last value."""
    value = None

    def matches():
        nonlocal value
        value = get()
        return value == expected
    wait_for(matches, timeout)
    return value


def store_size(c):
    return int(c.show("echo.service", "NFileDescriptorStore")["NFileDescriptorStore"])


def main_pid(c):
    return c.show("echo.service", "MainPID")["MainPID"]


def passed_fd_names(c, pid):
    """LISTEN_FDNAMES as systemd gave it to echod @pid: its sockets, then the
    connections from the fd store. /proc keeps the environment echod was
    started with, whatever it unset since."""
    environ = c.run("cat", f"/proc/{pid}/environ").stdout.split("\0")
    names = next((v.split("=", 1)[1] for v in environ if v.startswith("LISTEN_FDNAMES=")), "")
    return names.split(":") if names else []


def children_of(c, pid):
    return c.run("pgrep", "-P", str(pid), "-x", "echod", check_status=False).stdout.split()


def journal_cursor(c):
    out = c.run("journalctl", "--no-pager", "-n", "0", "--show-cursor").stdout
    return re.search(r"^-- cursor: (.+)$", out, re.MULTILINE).group(1)


def fd_store_log(c, cursor):
    """What PID 1 logged at debug level, since @cursor, about the fds in
    echo.service's store: ("added", name) as echod stores a connection,
    ("removed", name) on echod's FDSTOREREMOVE=1, ("hangup", name) when
    systemd drops a connection it saw close. The wording is systemd 252's."""
    out = c.run("journalctl", "--no-pager", "-o", "cat", "_PID=1",
                f"--after-cursor={cursor}").stdout
    events = []
    for line in out.splitlines():
        m = re.match(r"echo\.service: (Added fd|Got explicit request to remove fd|Received \S+ on "
                     r"stored fd) \d+ \((" + FD_NAME_PREFIX + r"[^)]*)\)", line)
        if m:
            kind = {"Added fd": "added", "Got explicit request to remove fd": "removed"}
            events.append((kind.get(m.group(1), "hangup"), m.group(2)))
    return events


def echod_trouble(c):
    """echod's errors and warnings (a failed fork or accept) and children
    killed, from the journal. echod's own entries only: in this container,
    systemd itself warns that it cannot set up the loopback device of
    PrivateNetwork= (nspawn leaves it no CAP_NET_ADMIN), which echod never
    uses."""
    return [e for e in journal_entries(c) if e.get("SYSLOG_IDENTIFIER") == "echod" and
            (e.get("PRIORITY") in ("0", "1", "2", "3", "4") or
             e.get("MESSAGE_ID") == MSG_CHILD_KILLED)]


def start_streams(c, seed):
    streams = Streams(N_STREAMS, seed)
    stuck = streams.progress([0] * N_STREAMS, 10)
    if stuck:
        streams.close()
    require(not stuck, f"{N_STREAMS} clients stream, and each gets its bytes back",
            streams.describe(stuck))
    return streams


def check_streams_exact(streams, what):
    """Every client ends its sending; each must get back every byte it sent,
    in order, then the end of the stream."""
    streams.finish(20)
    inexact = [client for client in streams.clients if not client.exact()]
    longest = max(client.longest_wait for client in streams.clients)
    return check(not inexact, f"{len(streams.clients) - len(inexact)} of {len(streams.clients)} "
                 f"connections kept {what}: each client got back exactly what it sent, in order, "
                 f"then EOF ({streams.bytes_checked()} bytes checked; the longest a client waited "
                 f"for an echo: {longest:.2f} s)", streams.describe(inexact))


def check_restarts_keep_connections(c):
    """N_STREAMS clients stream without pause through three restarts of
    echo.service. echod puts each connection in systemd's fd store as it
    accepts it; on a restart its children write back what they have read and
    leave their connections open, and the next echod gets them from the
    store, after its listening socket, and goes on echoing: no client
    notices. One more client, closed before the restarts, must stay closed:
    its connection leaves the store when it ends and no later echod resumes
    it. PID 1's debug log names the fds it stores and drops."""
    n = N_STREAMS
    size = settle(lambda: store_size(c), 0)
    check(size == 0, f"NFileDescriptorStore={size} while no client is connected")
    pid = main_pid(c)
    streams = None
    try:
        c.run("systemd-analyze", "log-level", "debug")
        try:
            cursor = journal_cursor(c)
            streams = start_streams(c, seed=1)

            def stored_names():
                return [name for event, name in fd_store_log(c, cursor) if event == "added"]
            names = wait_for(lambda: len(stored_names()) >= n and stored_names(), 5) or []
            check(len(set(names)) == n and all(x.startswith(f"{FD_NAME_PREFIX}{pid}-")
                                               for x in names),
                  f"echod {pid} puts each connection in the fd store under its own name: "
                  f"{len(set(names))} names, {names[:2]}...", str(names))

            with connect() as closer:
                closer.sendall(b"bye")
                require(recv_exactly(closer, 3) == b"bye", "one more client connects and echoes")
                added = wait_for(lambda: len(stored_names()) > n and stored_names(), 5) or []
            closed_name = added[-1] if len(added) == n + 1 else None

            def dropped():
                return [event for event, name in fd_store_log(c, cursor)
                        if name == closed_name and event != "added"]
            how = wait_for(dropped, 5)
            why = {"hangup": "systemd saw it close", "removed": "echod's FDSTOREREMOVE=1"}
            check(closed_name and how, f"it closes: its connection ({closed_name}) leaves the fd "
                  f"store ({how and why[how[0]]})")
        finally:
            c.run("systemd-analyze", "log-level", "info", check_status=False)
        size = settle(lambda: store_size(c), n)
        check(size == n,
              f"NFileDescriptorStore={size} before the restarts: the {n} live connections")

        for i in range(1, 4):
            since = streams.checked()
            started = time.monotonic()
            restart_service(c)
            took = time.monotonic() - started
            pid = main_pid(c)
            passed = passed_fd_names(c, pid)
            stored = [x for x in passed if x.startswith(FD_NAME_PREFIX)]
            check(passed[:1] == ["echo.socket"] and len(passed) == n + 1
                  and sorted(stored) == sorted(names) and closed_name not in passed,
                  f"restart {i} ({took:.1f} s): echod {pid} gets echo.socket, then the {n} stored "
                  "connections by name, not the closed one", str(passed))
            children = settle(lambda: len(children_of(c, pid)), n)
            size = store_size(c)
            check(children == n == size, f"restart {i}: {children} children, one per live "
                  f"client; NFileDescriptorStore={size}")
            stuck = streams.progress(since, 10)
            check(not stuck and not streams.ended(),
                  f"restart {i}: all {n} clients still connected, every one's echo flowing again",
                  streams.describe(stuck + streams.ended()))
            time.sleep(0.5)
        check_streams_exact(streams, "across 3 restarts")
    finally:
        if streams:
            streams.close()
    size = settle(lambda: store_size(c), 0)
    check(size == 0, f"closed by their clients, the connections leave the fd store: "
          f"NFileDescriptorStore={size}")


def check_ended_by_echod_closes(c):
    """A connection echod ends itself, here at --idle-timeout, must close for
    its client although the fd store holds a copy: the child closes its fd
    without shutting the connection down, and only the parent's
    FDSTOREREMOVE=1 makes systemd close the last copy. (A client that closes
    is no test of this: systemd sees that hang-up itself.)"""
    dropin = "/run/systemd/system/echo.service.d"
    c.run("mkdir", "-p", dropin)
    c.run("sh", "-c", "echo 'ECHOD_OPTS=\"--log-level=debug --idle-timeout=2\"' "
          ">/run/echod-e2e-idle.env && "
          f"printf '[Service]\\nEnvironmentFile=/run/echod-e2e-idle.env\\n' >{dropin}/idle.conf")
    try:
        c.systemctl("daemon-reload")
        restart_service(c)
        with connect() as idle:
            idle.sendall(b"x")
            require(recv_exactly(idle, 1) == b"x", "a client echoes once, then sends nothing")
            started = time.monotonic()
            idle.settimeout(8)
            try:
                how = "EOF" if idle.recv(1) == b"" else "bytes"
            except socket.timeout:
                how = "nothing in 8 s"
            except OSError as e:
                how = repr(e)
            took = time.monotonic() - started
        check(how == "EOF" and took < 5, f"echod ends it at --idle-timeout=2: the client sees "
              f"{how} after {took:.1f} s, although the fd store held a copy")
        size = settle(lambda: store_size(c), 0)
        check(size == 0, f"NFileDescriptorStore={size} after it")
    finally:
        c.run("rm", "-rf", dropin, "/run/echod-e2e-idle.env")
        c.systemctl("daemon-reload")
        restart_service(c)


def check_reused_pid_keeps_names_apart(c):
    """A connection keeps its first fd-store name, echod-conn-PID-N, through
    any number of restarts, and PIDs wrap: an echod that gets the PID of the
    one that named a still-stored connection must not give a new connection
    the same name, since FDSTOREREMOVE=1 closes every fd of a name. The
    container's next PID is set (ns_last_pid, written from the host's /proc
    inside the container's PID namespace) so that a restart gives echod an
    earlier echod's PID again."""
    restart_service(c)                      # a fresh echod: its first name ends in -1
    first = int(main_pid(c))
    kept = connect()
    try:
        kept.sendall(b"k")
        require(recv_exactly(kept, 1) == b"k", f"a client of echod {first} echoes")
        restart_service(c)                  # it goes on under echod {first}'s name
        for offset in (1, 2, 3, 4, 5, 7, 9):
            c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
            run(["nsenter", "-t", str(c.leader), "-p", "--", "sh", "-c",
                 f"echo {first - offset} >/proc/sys/kernel/ns_last_pid && exec nsenter -t "
                 f"{c.leader} -m -u -i -n -- systemctl --no-pager restart echo.service"])
            if int(main_pid(c)) == first:
                break
        require(int(main_pid(c)) == first, f"a later restart gives echod PID {first} again",
                main_pid(c))
        with connect() as other:
            other.sendall(b"o")
            require(recv_exactly(other, 1) == b"o", "a new client echoes, then closes")
        size = settle(lambda: store_size(c), 1)
        check(size == 1, f"NFileDescriptorStore={size}: the new client's end leaves the kept "
              "connection in the store")
        restart_service(c)
        kept.settimeout(5)
        try:
            kept.sendall(b"K")
            echoed = recv_exactly(kept, 1)
        except OSError as e:
            echoed = repr(e).encode()
        check(echoed == b"K", f"and the kept connection survives the next restart: {echoed!r}")
    finally:
        kept.close()


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
    bad = echod_trouble(c)
    check(not bad, "no error, no warning (failed fork or accept), no killed child in the journal",
          "\n".join(e.get("MESSAGE", "") for e in bad[:10]))


def check_restart_at_the_cap(c):
    """The default --max-connections (1024) kept through a restart: systemd
    passes the listening socket and 1024 stored connections as fds 3 to
    1027, which the service's fd limit (LimitNOFILE=) must allow, or echod
    does not start and every connection is lost."""
    n = 1024
    socks = []
    try:
        for _ in range(n):
            socks.append(connect())
        for s in socks:
            s.sendall(b"y")
        require(all(recv_exactly(s, 1) == b"y" for s in socks), f"{n} connections echo")
        size = settle(lambda: store_size(c), n)
        check(size == n, f"NFileDescriptorStore={size}: all {n} are in the fd store")
        c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
        restarted = c.systemctl("restart", "echo.service", check_status=False)
        pid = main_pid(c)
        stored = [x for x in passed_fd_names(c, pid) if x.startswith(FD_NAME_PREFIX)] \
            if restarted.returncode == 0 else []
        check(restarted.returncode == 0 and len(stored) == n,
              f"systemctl restart echo.service: echod {pid} starts with the {len(stored)} "
              "stored connections", restarted.stderr + "\n".join(
                  e.get("MESSAGE", "") for e in journal_entries(c)[-5:]))
        for s in socks:
            with contextlib.suppress(OSError):
                s.sendall(b"z")
        deadline = time.monotonic() + 10

        def echoed_back(s):
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                return recv_exactly(s, 1) == b"z"
            except OSError:
                return False
        echoed = sum(echoed_back(s) for s in socks)
        check(echoed == n, f"after the restart, {echoed} of the {n} connections echo")
    finally:
        for s in socks:
            s.close()
        if c.state("is-active", "echo.socket") != "active":
            c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
            c.systemctl("start", "echo.socket")
    size = settle(lambda: store_size(c), 0, 15)
    check(size == 0,
          f"closed by their clients, they leave the fd store: NFileDescriptorStore={size}")


def check_stop_and_start(c):
    """Stop is not restart: systemd empties the fd store, and the clients
    connected see their connections close; nothing is kept for a later
    start."""
    n = N_STREAMS
    streams = start_streams(c, seed=1000)
    try:
        size = settle(lambda: store_size(c), n)
        check(size == n, f"NFileDescriptorStore={size}: the {n} live connections")
        started = time.monotonic()
        c.systemctl("stop", "echo.service", "echo.socket")
        stopped = time.monotonic() - started
        wait_for(lambda: len(streams.ended()) == n, 10)
        ended = streams.ended()
        how = {kind: sum(x.ended == kind for x in ended) for kind in {x.ended for x in ended}}
        slowest = max((x.ended_at - started for x in ended), default=0)
        check(len(ended) == n and set(how) <= {"eof", "reset"},
              f"systemctl stop echo.service echo.socket ({stopped:.1f} s): each of the {n} "
              f"clients sees its connection close, within {slowest:.1f} s: {how}",
              streams.describe([x for x in streams.clients if x.ended not in ("eof", "reset")]))
        check(not any(x.wrong for x in streams.clients),
              f"every byte echoed until then was right ({streams.bytes_checked()} bytes checked)")
    finally:
        streams.close()
    check(c.run("pgrep", "-x", "echod", check_status=False).returncode == 1,
          "stop leaves no echod process")
    size = store_size(c)
    check(size == 0, f"NFileDescriptorStore={size} after stop")
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


def check_upgrade_keeps_connections(c):
    """dpkg -i of a higher version while N_STREAMS clients stream and new
    clients keep connecting. The postinst leaves echo.socket open (not one
    connection refused) and try-restarts echo.service: the new binary
    serves, and the live connections pass to it through the fd store."""
    n = N_STREAMS
    c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
    streams = start_streams(c, seed=2000)
    new_connections = None
    try:
        before = c.show("echo.service", "MainPID", "ExecMainStartTimestampMonotonic")
        socket_since = c.show("echo.socket", "ActiveEnterTimestampMonotonic")
        old_exe = c.run("stat", "-L", "-c", "%i", f"/proc/{before['MainPID']}/exe").stdout.strip()
        new_connections = NewConnections(4)
        time.sleep(0.2)
        started = time.monotonic()
        c.run("dpkg", "-i", "/srv/echod-e2e/echod-upgrade.deb", timeout=120)
        took = time.monotonic() - started
        since = streams.checked()
        time.sleep(0.2)
        total = new_connections.stop()
        results, errors = new_connections.results, new_connections.errors
        new_connections = None

        version = c.run("dpkg-query", "-W", "-f=${Version}", "echod").stdout
        check(version == UPGRADE_VERSION, f"dpkg -i upgraded echod to {version} ({took:.1f} s)")
        check(c.show("echo.socket", "ActiveEnterTimestampMonotonic") == socket_since,
              "the upgrade left echo.socket alone: its listening socket stayed open throughout")
        check(total >= 200 and results["ok"] == total,
              f"{total} new connections during the upgrade: none refused, none cut, every echo "
              f"exact: {results}", str(errors[:10]))
        after = c.show("echo.service", "MainPID", "ExecMainStartTimestampMonotonic")
        new_exe = c.run("stat", "-L", "-c", "%i", f"/proc/{after['MainPID']}/exe").stdout.strip()
        installed = c.run("stat", "-c", "%i", "/usr/sbin/echod").stdout.strip()
        check(after["MainPID"] != before["MainPID"] and
              int(after["ExecMainStartTimestampMonotonic"]) >
              int(before["ExecMainStartTimestampMonotonic"]) and
              new_exe == installed != old_exe,
              f"the postinst restarted echo.service: echod {after['MainPID']} (was "
              f"{before['MainPID']}) runs the upgraded /usr/sbin/echod (inode {new_exe}; the "
              f"installed file's: {installed}; the old echod's: {old_exe})")
        stored = [x for x in passed_fd_names(c, after["MainPID"]) if x.startswith(FD_NAME_PREFIX)]
        check(len(stored) >= n, f"the new echod got {len(stored)} connections from the fd store: "
              f"the {n} streaming clients' and any new one's in flight")
        stuck = streams.progress(since, 10)
        check(not stuck and not streams.ended(),
              f"all {n} clients still connected, every one's echo flowing from the new echod",
              streams.describe(stuck + streams.ended()))
        size = settle(lambda: store_size(c), n)
        children = settle(lambda: len(children_of(c, after["MainPID"])), n)
        check(size == n and children == n,
              f"NFileDescriptorStore={size}, {children} children: one per live client")
        check_streams_exact(streams, f"across the upgrade to {UPGRADE_VERSION}")
    finally:
        if new_connections:
            new_connections.stop()
        streams.close()
    size = settle(lambda: store_size(c), 0)
    check(size == 0, f"closed by their clients, the connections leave the fd store: "
          f"NFileDescriptorStore={size}")
    bad = echod_trouble(c)
    check(not bad, "no error, no warning, no killed child in the journal, through every restart, "
          "the stop and both upgrades", "\n".join(e.get("MESSAGE", "") for e in bad[:10]))


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
    check_restarts_keep_connections(c)
    check_ended_by_echod_closes(c)
    check_reused_pid_keeps_names_apart(c)
    check_many_children(c)
    check_restart_at_the_cap(c)
    check_stop_and_start(c)
    check_udp_opt_in(c)
    check_upgrade(c)
    check_upgrade_keeps_connections(c)
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
        upgrade_deb = build_deb(SOURCE_DIR, scratch, UPGRADE_VERSION)
        log(f"package: {deb}, upgraded to {upgrade_deb}")
        container.mount()
        os.makedirs(os.path.join(container.root, "srv", "echod-e2e"))
        shutil.copy(deb, os.path.join(container.root, "srv", "echod-e2e", "echod.deb"))
        shutil.copy(upgrade_deb,
                    os.path.join(container.root, "srv", "echod-e2e", "echod-upgrade.deb"))
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
