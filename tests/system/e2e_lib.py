"""What the end-to-end checks share: the container, clients, assertions.

e2e.py boots a systemd in systemd-nspawn (a Container) and runs the checks of
the e2e_*.py modules against it, in order. Each check is a function of the
Container; it reports through check() (counted, the test goes on) and require()
(the steps after it depend on it: the test ends). Clients talk to the
container from the host, over the loopback, on port 7.
"""

import contextlib
import json
import os
import random
import select
import signal
import socket
import subprocess
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
MSG_FD_STORE_FULL = "a39c9719cbbe4fee9e82313c627b87b8"
LOOPBACK_V4 = ("127.0.0.1", "::ffff:127.0.0.1")

# The name echod gives each connection it puts in systemd's fd store.
FD_NAME_PREFIX = "echod-conn-"
# Clients that stream through restarts and the upgrade.
N_STREAMS = 50
# The version of the package upgraded to: above debian/changelog's 0.1.0.
UPGRADE_VERSION = "0.1.0+e2e1"


# Reporting and waiting.

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


def run(cmd, timeout=120, check_status=True, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check_status and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit status {result.returncode}\n"
                             f"{result.stdout}{result.stderr}")
    return result


# Where the container's Debian comes from.

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def host_release():
    """The host's Debian codename (bookworm, trixie), from /etc/os-release."""
    with open("/etc/os-release") as f:
        fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    return fields.get("VERSION_CODENAME", "").strip('"')


def unwind_on_signals():
    """A timeout in meson test arrives as SIGTERM: raise instead, so that
    every cleanup (container, overlay, VM, scratch dir) runs."""
    def interrupted(signo, _frame):
        raise SystemExit(f"interrupted by signal {signo}")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)


def release_under_test():
    """The release $ECHOD_RELEASE names, or the host's."""
    return Release(os.environ.get("ECHOD_RELEASE") or host_release())


class Release:
    """A Debian release to build the package on and boot in a container. The
    host's own release is an overlay of / with the host's tools. Another is a
    root that debian-root debootstraps and caches, whose own tools
    (dpkg-buildpackage, lintian, systemd-nspawn) run in it through in-root, so
    that the package is built, checked and booted as on that release. A path
    given in @binds appears at the same path inside."""

    def __init__(self, name):
        self.name = name
        self.host = name == host_release()
        self.root = "/" if self.host else None

    def prepare(self):
        """Makes or refreshes the cached root: minutes the first time."""
        if not self.host:
            made = run([os.path.join(TESTS_DIR, "debian-root"), self.name], timeout=1800)
            self.root = made.stdout.strip()
            if made.stderr:
                log(made.stderr.rstrip())

    def command(self, cmd, binds=()):
        if self.host:
            return list(cmd)
        args = [os.path.join(TESTS_DIR, "in-root"), self.root]
        for path in binds:
            args += ["--bind", f"{path}:{path}"]
        return args + ["--", *cmd]

    def run(self, cmd, binds=(), **kwargs):
        return run(self.command(cmd, binds), **kwargs)


# The host side: which ports are open. The container shares our network
# namespace, so its sockets show here too.

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


class Container:
    """A systemd booted in systemd-nspawn over an overlay of @release's root
    (the host's / or a cached one), with that release's nspawn; every command
    runs inside through nsenter. close() undoes everything, on every path.
    @source_dir is the tree the package was built from."""

    def __init__(self, scratch, source_dir, release):
        self.scratch = scratch
        self.source_dir = source_dir
        self.release = release
        self.root = os.path.join(scratch, "root")
        self.nspawn = None
        self.leader = None
        self.mounted = False

    def mount(self):
        for d in ("upper", "work", "root"):
            os.makedirs(os.path.join(self.scratch, d))
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={self.release.root},upperdir={self.scratch}/upper,"
             f"workdir={self.scratch}/work",
             self.root])
        self.mounted = True
        if not self.release.host:
            # The container would share its machine ID with the root that
            # runs nspawn: let its systemd make up one of its own.
            with open(os.path.join(self.root, "etc", "machine-id"), "w"):
                pass

    def boot(self):
        self.console = open(os.path.join(self.scratch, "console.log"), "w")
        # basic.target and masked timers: the host's enabled services (which
        # would share its network) and apt's timers stay off.
        # in-root execs nspawn: its PID stays the one Popen knows.
        # --link-journal=no: linking the container's journal into the root
        # nspawn runs from needs that root's machine ID, and mmdebstrap leaves
        # it empty ("Failed to retrieve machine ID: No medium found" from
        # trixie's nspawn); the tests read the journal inside the container.
        self.nspawn = subprocess.Popen(self.release.command(
            ["systemd-nspawn", "-D", self.root, "--register=no", "--keep-unit",
             "--link-journal=no",
             "-M", MACHINE, "-b", "--console=passive", "--",
             "systemd.firstboot=off", "systemd.unit=basic.target",
             "systemd.mask=timers.target"], binds=[self.scratch]),
            stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT)
        # The first child of nspawn is a short-lived helper: wait for systemd.
        self.leader = wait_for(self.find_leader, 30)
        if not self.leader:
            raise AssertionError("the container's systemd did not start\n" + self.console_log())
        # Until systemd has set up its private socket, systemctl cannot ask
        # it anything: retry while it answers nothing, or (systemd 257)
        # "offline" because /run/systemd/system is not there yet.
        def system_state():
            result = self.run("systemctl", "is-system-running", "--wait",
                              check_status=False, timeout=90)
            self.last_answer = result.stdout + result.stderr
            return result.stdout.strip() not in ("", "offline") and result.stdout.strip()
        state = wait_for(system_state, 90, 0.2) or self.last_answer.strip()
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

def open_echoing(socks, n, byte):
    """Opens @n connections to port 7 into @socks (the caller closes them,
    whatever happens), each echoing @byte once, all sent before any is
    read. Returns whether every one echoed."""
    for _ in range(n):
        socks.append(connect())
    for s in socks[-n:]:
        s.sendall(byte)
    return all(recv_exactly(s, len(byte)) == byte for s in socks[-n:])

def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def udp_exchange(sock, data, timeout=5):
    """Sends @data to port 7; returns (reply, source), or (None, None) when
    nothing came back within @timeout."""
    sock.settimeout(timeout)
    sock.sendto(data, ("127.0.0.1", PORT))
    try:
        return sock.recvfrom(65536)
    except socket.timeout:
        return None, None


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
        self.paused = False             # sends nothing new meanwhile (Streams.pause())
        self.ended = None               # "eof", "reset", "wrong bytes" or an error
        self.ended_at = None
        self.wrong = None               # the first byte that came back wrong, described
        self.last_echo_at = time.monotonic()
        self.longest_wait = 0.0         # the longest time without an echoed byte while sending

    def events(self):
        if self.ended:
            return 0
        if self.sending and not self.paused and len(self.owed) < STREAM_WINDOW:
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

    def pause(self, timeout):
        """Every client stops sending until resume(), and waits up to
        @timeout for all it is owed; returns the clients still owed bytes."""
        for client in self.clients:
            client.paused = True
        wait_for(lambda: not any(client.owed for client in self.clients), timeout)
        return [client for client in self.clients if client.owed]

    def resume(self):
        for client in self.clients:
            client.paused = False

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


# What systemd and the journal say about echo.service.

def status_text(c):
    return c.show("echo.service", "StatusText")["StatusText"]


def wait_status(c, expected):
    """STATUS= goes out at most once a second: allow a few."""
    return wait_for(lambda: status_text(c) == expected, 5) or status_text(c)


def main_pid(c):
    return c.show("echo.service", "MainPID")["MainPID"]


def restart_service(c):
    # Quick restarts hit the start limit (5 in 10 s), which would fail the
    # socket too: clear it first.
    c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
    c.systemctl("restart", "echo.service")


def journal(c, *args):
    out = c.run("journalctl", "--no-pager", "-u", "echo.service", *args).stdout
    return out


def journal_entries(c):
    return [json.loads(line) for line in journal(c, "-o", "json").splitlines() if line]


def echod_trouble(c):
    """echod's errors and warnings (a failed fork or accept) and children
    killed, from the journal. echod's own entries only: in this container,
    systemd itself warns that it cannot set up the loopback device of
    PrivateNetwork= (nspawn leaves it no CAP_NET_ADMIN), which echod never
    uses."""
    return [e for e in journal_entries(c) if e.get("SYSLOG_IDENTIFIER") == "echod" and
            (e.get("PRIORITY") in ("0", "1", "2", "3", "4") or
             e.get("MESSAGE_ID") == MSG_CHILD_KILLED)]


# The fd store: what systemd holds for echo.service, and what it passes on.

def store_size(c):
    return int(c.show("echo.service", "NFileDescriptorStore")["NFileDescriptorStore"])


def passed_fd_names(c, pid):
    """LISTEN_FDNAMES as systemd gave it to echod @pid: its sockets, then the
    connections from the fd store. /proc keeps the environment echod was
    started with, whatever it unset since."""
    environ = c.run("cat", f"/proc/{pid}/environ").stdout.split("\0")
    names = next((v.split("=", 1)[1] for v in environ if v.startswith("LISTEN_FDNAMES=")), "")
    return names.split(":") if names else []


def children_of(c, pid):
    """The processes serving connections for the echod of @pid: its acceptor's
    children, and any it adopted when an acceptor died."""
    def pgrep(parent, name):
        return c.run("pgrep", "-P", str(parent), "-x", name, check_status=False).stdout.split()
    acceptors = pgrep(pid, "echod-acceptor")
    return pgrep(pid, "echod-conn") + [x for a in acceptors for x in pgrep(a, "echod-conn")]
