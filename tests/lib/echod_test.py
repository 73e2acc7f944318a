"""Shared helpers for echod's integration tests.

A test starts the built daemon ($ECHOD, behind the words of $ECHOD_WRAPPER such as valgrind),
talks to it over real loopback and AF_UNIX sockets, reads what it tells a real NOTIFY_SOCKET,
and looks at its processes in /proc. Time is only ever a generous bound: bound() stretches it
when a wrapper makes the daemon slow.

A test is a function handed to run(): it raises TestFailure (through expect() or fail()) with
what was expected and what was seen; run() turns that into exit 1, a skip into 77, success
into 0. Every Daemon is a context manager that kills what is left and removes its temp dir.
"""
import os
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

EXIT_SKIP = 77
ECHOD = os.environ.get('ECHOD', '')
ACCEPTOR = os.environ.get('ECHOD_ACCEPTOR') or \
        os.path.join(os.path.dirname(ECHOD), 'echod-acceptor')
PASS_FDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pass-fds')
# Runs a command where a system call fails with ENOSYS (tests/helpers/without-syscall.c).
WITHOUT_SYSCALL = os.environ.get('WITHOUT_SYSCALL', '')
# A library to preload that uses libc in each connection's child (tests/helpers/libc-in-child.c).
LIBC_IN_CHILD = os.environ.get('LIBC_IN_CHILD', '')
# Kills the acceptor right after its first fork (tests/helpers/acceptor-dies-after-fork.c).
ACCEPTOR_DIES_AFTER_FORK = os.environ.get('ACCEPTOR_DIES_AFTER_FORK', '')
# Starts a thread from a constructor (tests/helpers/thread-at-start.c).
THREAD_AT_START = os.environ.get('THREAD_AT_START', '')
WRAPPER = shlex.split(os.environ.get('ECHOD_WRAPPER', ''))
# valgrind makes the daemon ~20x slower on CPU; the bounds below are already generous for an
# unwrapped run, so 10x of them is plenty. Sanitizers cost ~2-3x, which the bounds absorb.
SLOWDOWN = 10 if WRAPPER else 1
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')

# Variables that would change the daemon's behaviour if they leaked in from the caller.
_DAEMON_VARIABLES = ('JOURNAL_STREAM', 'NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID',
                     'LISTEN_FDNAMES', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'FDSTORE')
# systemd-socket-activate passes its children only PATH, TERM, USER, HOME and its -E values.
_SANITIZER_VARIABLES = ('ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'MSAN_OPTIONS')
# What the daemon passes on to the acceptor it starts: where that program is (the build tree's).
_PASSED_VARIABLES = _SANITIZER_VARIABLES + ('LD_PRELOAD',)
# The processes' names (comm): the acceptor, and the children it forks, one per connection.
ACCEPTOR_COMM = 'echod-acceptor'
CONNECTION_COMM = 'echod-conn'


class TestFailure(Exception):
        pass


class TestSkipped(Exception):
        pass


def fail(message):
        raise TestFailure(message)


def expect(condition, message):
        if not condition:
                raise TestFailure(message)


def skip(message):
        raise TestSkipped(message)


def skip_without_seccomp_helper(name):
        """Skips unless the without-syscall helper can refuse @name here: it must be built,
        and a seccomp filter must be settable (qemu-user does not emulate seccomp)."""
        if not os.access(WITHOUT_SYSCALL, os.X_OK):
                skip('no without-syscall helper (WITHOUT_SYSCALL)')
        probe = subprocess.run([WITHOUT_SYSCALL, name, 'true'], capture_output=True,
                               text=True)
        if probe.returncode != 0 and 'Invalid argument' in probe.stderr:
                skip('no seccomp filter can be set (PR_SET_SECCOMP: EINVAL, as under '
                     'qemu-user, which does not emulate seccomp)')


def run(test):
        """Runs @test and exits with meson's codes: 0 pass, 1 fail, 77 skip."""
        if not ECHOD or not os.access(ECHOD, os.X_OK):
                print(f'FAIL: $ECHOD is not an executable: {ECHOD!r}', file=sys.stderr)
                sys.exit(1)
        try:
                test()
        except TestSkipped as e:
                print(f'SKIP: {e}')
                sys.exit(EXIT_SKIP)
        except TestFailure as e:
                print(f'FAIL: {e}', file=sys.stderr)
                sys.exit(1)
        print('PASS')
        sys.exit(0)


def bound(seconds):
        """A time bound in seconds, stretched when a wrapper slows the daemon down."""
        return seconds * SLOWDOWN


def wait_until(predicate, timeout, interval=0.05):
        """Polls @predicate until it returns something true or @timeout passes; returns the
        last value, so a caller can show what it saw."""
        deadline = time.monotonic() + timeout
        while True:
                value = predicate()
                if value or time.monotonic() >= deadline:
                        return value
                time.sleep(interval)


def require_tool(name):
        path = shutil.which(name)
        if not path:
                skip(f'{name} is not installed')
        return path


# --- addresses and clients ---------------------------------------------------------------------

def _port_is_free(family, host, port):
        with socket.socket(family, socket.SOCK_STREAM) as s:
                try:
                        s.bind((host, port))
                except OSError:
                        return False
        return True


def free_port():
        """A TCP port free on both 127.0.0.1 and ::1, found by binding port 0 and closing."""
        for _ in range(50):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                        s.bind(('127.0.0.1', 0))
                        port = s.getsockname()[1]
                if _port_is_free(socket.AF_INET6, '::1', port):
                        return port
        fail('could not find a TCP port free on both 127.0.0.1 and ::1')


def listening_socket(host='127.0.0.1'):
        """A listening TCP socket on a free port of @host, as echo.socket would pass one."""
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.bind((host, 0))
        sock.listen(socket.SOMAXCONN)
        return sock


def client_address(listen_text):
        """Where a client connects for a --listen (or systemd-socket-activate -l) address:
        "/path", "[::1]:P", "A.B.C.D:P", or a bare port, reached here through 127.0.0.1."""
        if listen_text.startswith('/'):
                return listen_text
        if listen_text.startswith('['):
                host, _, port = listen_text[1:].partition(']:')
                return (host, int(port))
        if ':' in listen_text:
                host, _, port = listen_text.rpartition(':')
                return (host, int(port))
        return ('127.0.0.1', int(listen_text))


def connect(address, timeout=None, source=None):
        """A connected client socket (blocking, with a timeout) for a (host, port) or a path;
        from the local address @source if given (any 127.0.0.0/8 address works on loopback)."""
        timeout = bound(10) if timeout is None else timeout
        if isinstance(address, str):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
                family = socket.AF_INET6 if ':' in address[0] else socket.AF_INET
                s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
                if source is not None:
                        s.bind((source, 0))
                s.connect(address)
        except OSError:
                s.close()
                raise
        return s


def recv_exactly(sock, n, timeout=None, what='the echo'):
        """Reads exactly @n bytes, failing on end of stream or when @timeout passes."""
        deadline = time.monotonic() + (bound(10) if timeout is None else timeout)
        chunks, got = [], 0
        while got < n:
                left = deadline - time.monotonic()
                if left <= 0:
                        fail(f'{what}: expected {n} bytes, got {got} before the time bound')
                sock.settimeout(left)
                try:
                        chunk = sock.recv(min(n - got, 1 << 20))
                except socket.timeout:
                        fail(f'{what}: expected {n} bytes, got {got} before the time bound')
                if not chunk:
                        fail(f'{what}: expected {n} bytes, got {got} and then end of stream')
                chunks.append(chunk)
                got += len(chunk)
        return b''.join(chunks)


def expect_echo(sock, data, timeout=None, what='the echo'):
        """Sends @data and expects the same bytes back."""
        sock.sendall(data)
        echoed = recv_exactly(sock, len(data), timeout, what)
        expect(echoed == data, f'{what}: sent {data[:40]!r}..., got {echoed[:40]!r}... back')


def expect_eof(sock, timeout=None, what='the connection'):
        """Expects a clean end of stream (no more bytes, no reset) within @timeout."""
        sock.settimeout(bound(5) if timeout is None else timeout)
        try:
                rest = sock.recv(65536)
        except socket.timeout:
                fail(f'{what}: expected end of stream, but it stayed open')
        except ConnectionResetError:
                fail(f'{what}: expected a clean end of stream, got a connection reset')
        expect(rest == b'', f'{what}: expected end of stream, got {len(rest)} more bytes')


def is_closed_by_peer(sock):
        """True when the peer has closed: end of stream or a reset; False when still open."""
        sock.setblocking(False)
        try:
                return sock.recv(65536) == b''
        except BlockingIOError:
                return False
        except ConnectionResetError:
                return True
        finally:
                sock.setblocking(True)


def round_trip(sock, payload, timeout=None, recv_chunk=1 << 20, on_chunk=None):
        """Sends @payload from a writer thread (then half-closes) while this thread reads;
        returns what came back up to end of stream. Neither side can block the other."""
        deadline = time.monotonic() + (bound(30) if timeout is None else timeout)
        errors = []

        def writer():
                try:
                        sock.sendall(payload)
                        sock.shutdown(socket.SHUT_WR)
                except OSError as e:
                        errors.append(e)

        sock.settimeout(None)
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        received = bytearray()
        while True:
                left = deadline - time.monotonic()
                if left <= 0:
                        fail(f'round trip: {len(received)} of {len(payload)} bytes back '
                             'before the time bound')
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                        continue
                chunk = sock.recv(recv_chunk)
                if not chunk:
                        break
                received += chunk
                if on_chunk:
                        on_chunk()
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
        expect(not errors, f'round trip: sending failed: {errors}')
        return bytes(received)


def read_available(sock, quiet=0.3):
        """Whatever @sock has to read until @quiet seconds pass without a byte, or the end of
        the stream."""
        chunks = []
        sock.settimeout(quiet)
        while True:
                try:
                        chunk = sock.recv(1 << 20)
                except TimeoutError:
                        break
                if not chunk:
                        break
                chunks.append(chunk)
        return b''.join(chunks)


def expect_same_stream(sent, received, what='the echo'):
        """Fails naming the first differing byte, or the missing tail."""
        if sent == received:
                return
        n = min(len(sent), len(received))
        first = next((i for i in range(n) if sent[i] != received[i]), n)
        if first == len(received):
                fail(f'{what}: sent {len(sent)} bytes, only the first {len(received)} came '
                     'back, then end of stream')
        fail(f'{what}: sent {len(sent)} bytes, got {len(received)} back; the first '
             f'{first} are right, byte {first} differs')


def _proc_net_tcp_address(sockaddr):
        host, port = sockaddr[:2]
        packed = int.from_bytes(socket.inet_aton(host), 'little')
        return f'{packed:08X}:{port:04X}'


def _tcp_queues(local, remote):
        """(tx_queue, rx_queue) of the IPv4 TCP socket @local -> @remote, from /proc/net/tcp."""
        local, remote = _proc_net_tcp_address(local), _proc_net_tcp_address(remote)
        with open('/proc/net/tcp') as f:
                for line in f.readlines()[1:]:
                        fields = line.split()
                        if fields[1] == local and fields[2] == remote:
                                tx, rx = fields[4].split(':')
                                return int(tx, 16), int(rx, 16)
        return None


def accept_backlog(address):
        """How many connections wait in the accept queue of the IPv4 listener at @address
        (host, port): the rx_queue of a LISTEN socket in /proc/net/tcp."""
        local = _proc_net_tcp_address(address)
        with open('/proc/net/tcp') as f:
                for line in f.readlines()[1:]:
                        fields = line.split()
                        if fields[1] == local and fields[3] == '0A':
                                return int(fields[4].split(':')[1], 16)
        fail(f'no listener at {address} in /proc/net/tcp')


def unread_by_peer(sock):
        """How many bytes @sock (an IPv4 client) sent that the process on the other end has
        not read yet: still in flight from us, or waiting in its receive queue."""
        ours = _tcp_queues(sock.getsockname(), sock.getpeername())
        theirs = _tcp_queues(sock.getpeername(), sock.getsockname())
        if ours is None or theirs is None:
                fail(f'{sock} is not in /proc/net/tcp')
        return ours[0] + theirs[1]


def reset(sock):
        """Closes @sock with an RST instead of a FIN (SO_LINGER with a zero timeout)."""
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        sock.close()


def peer_has_closed(sock):
        """True once the peer sent its FIN or an RST, found without reading: for a client
        whose receive queue is full of echoes it never read. poll(2), not TCP_INFO, which
        qemu-user passes back as a 4-byte int, byte-swapped on a big-endian target (s390x)."""
        p = select.poll()
        p.register(sock, select.POLLRDHUP)
        return any(ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR)
                   for _, ev in p.poll(0))


def refused_at_once(sock, timeout=None):
        """What a connection closed without an echo looks like to its client: the first read
        gives end of stream or a reset (True), not data and not a wait (a message)."""
        sock.settimeout(bound(5) if timeout is None else timeout)
        try:
                data = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
                return True
        except socket.timeout:
                return 'the connection stayed open'
        return True if data == b'' else f'{len(data)} bytes came back: {data[:40]!r}'


def garbage(size):
        """@size bytes, every byte value 0..255 first (NUL and 0xff too), then random ones."""
        head = bytes(range(256))[:size]
        return head + os.urandom(size - len(head))


def flood(sock, limit, timeout, progress=None):
        """Sends up to @limit bytes on @sock, never reading, for at most @timeout seconds;
        returns (bytes sent, the error that ended it or None), and keeps progress['sent']
        up to date if given. A server that stops reading makes the sends stall; one that
        closes makes them fail."""
        chunk = os.urandom(1 << 16)
        deadline = time.monotonic() + timeout
        progress = {} if progress is None else progress
        progress['sent'] = 0
        sock.setblocking(False)
        try:
                while progress['sent'] < limit:
                        left = deadline - time.monotonic()
                        if left <= 0:
                                return progress['sent'], None
                        _, writable, _ = select.select([], [sock], [], min(left, 0.1))
                        if not writable:
                                continue
                        try:
                                progress['sent'] += sock.send(chunk[:limit - progress['sent']])
                        except BlockingIOError:
                                continue
                        except OSError as e:
                                return progress['sent'], e
                return progress['sent'], None
        finally:
                sock.setblocking(True)


def expect_still_serving(daemon, what='after the fault'):
        """The daemon runs, and a new client gets every byte back."""
        expect(daemon.running(), f'{what}: the daemon exited with status '
                                 f'{daemon.process.poll()}')
        with daemon.connect() as client:
                expect_echo(client, garbage(4096), what=f'a new client {what}')


class Bystanders:
        """Well-behaved clients beside a fault: @n threads that each connect to @address again
        and again, send @size random bytes, half-close, and expect every byte back then end of
        stream. A context manager; check() fails with what any of them saw go wrong."""

        def __init__(self, address, n=2, size=16384, timeout=None):
                self.address = address
                self.size = size
                self.timeout = bound(30) if timeout is None else timeout
                self.exchanges = 0
                self.errors = []
                self._lock = threading.Lock()
                self._stop = threading.Event()
                self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                                 for i in range(n)]

        def __enter__(self):
                for t in self._threads:
                        t.start()
                return self

        def __exit__(self, *exc):
                self.stop()
                return False

        def _client(self, i):
                while not self._stop.is_set():
                        payload = garbage(self.size)
                        try:
                                with connect(self.address, self.timeout) as sock:
                                        received = round_trip(sock, payload, self.timeout)
                                expect_same_stream(payload, received, f'bystander {i}')
                        except (OSError, TestFailure) as e:
                                with self._lock:
                                        self.errors.append(f'bystander {i}: {e!r}')
                                return
                        with self._lock:
                                self.exchanges += 1
                        self._stop.wait(0.05)

        def stop(self):
                """Lets each finish the exchange it is in (within its time bound), then stops."""
                self._stop.set()
                for t in self._threads:
                        t.join(self.timeout + 5)
                        expect(not t.is_alive(), 'a bystander is stuck past its time bound')

        def count(self):
                with self._lock:
                        return self.exchanges

        def check(self, at_least=1):
                with self._lock:
                        errors, exchanges = list(self.errors), self.exchanges
                expect(not errors, 'a well-behaved client was not served right: ' +
                                   '; '.join(errors))
                expect(exchanges >= at_least, f'expected the well-behaved clients to finish at '
                                              f'least {at_least} exchanges, they did {exchanges}')


# --- datagrams ---------------------------------------------------------------------------------

def datagram_socket(host, port=0):
        """A UDP socket bound to (@host, @port), port 0 for any."""
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((host, port))
        return s


def privileged_datagram_socket(host):
        """A UDP socket bound to a free port below 1024 on @host: the source port of a
        spoofed datagram that would turn an echo port against another service. Needs root
        (or CAP_NET_BIND_SERVICE)."""
        for port in range(1000, 600, -1):
                try:
                        return datagram_socket(host, port)
                except PermissionError:
                        skip('binding a port below 1024 needs root')
                except OSError:
                        continue
        fail('no free UDP port between 601 and 1000')


def exchange_datagram(sock, payload, address, timeout=None):
        """Sends @payload to @address and returns (reply, source), or (None, None) when no
        datagram came back within @timeout."""
        sock.sendto(payload, address)
        sock.settimeout(bound(5) if timeout is None else timeout)
        try:
                return sock.recvfrom(1 << 17)
        except socket.timeout:
                return None, None


def expect_datagram_echo(sock, payload, address, what='the datagram'):
        reply, source = exchange_datagram(sock, payload, address)
        expect(reply is not None, f'{what} ({len(payload)} bytes): no reply within {bound(5)} s')
        expect(reply == payload, f'{what}: sent {len(payload)} bytes, got {len(reply)} back, '
                                 f'{"different" if len(reply) == len(payload) else "cut"}')
        expect(source[:2] == address[:2], f'{what}: answered from {source}, not {address}')


# --- processes in /proc ------------------------------------------------------------------------

def proc_stat(pid):
        """Name, state, parent, process group, CPU ticks and start time of @pid, or None when
        it is gone."""
        try:
                with open(f'/proc/{pid}/stat') as f:
                        text = f.read()
        except (FileNotFoundError, ProcessLookupError):
                return None
        # comm may hold spaces and parentheses: the fields start after the last ')'.
        fields = text[text.rindex(')') + 2:].split()
        return {
                'comm': text[text.index('(') + 1:text.rindex(')')],
                'state': fields[0],
                'ppid': int(fields[1]),
                'pgrp': int(fields[2]),
                'utime': int(fields[11]),
                'stime': int(fields[12]),
                'starttime': int(fields[19]),
        }


def children_of(pid):
        """PIDs of the processes whose parent is @pid, zombies included."""
        children = []
        for entry in os.listdir('/proc'):
                if entry.isdigit():
                        st = proc_stat(int(entry))
                        if st and st['ppid'] == pid:
                                children.append(int(entry))
        return sorted(children)


def zombies_of(pid):
        return [c for c in children_of(pid) if (proc_stat(c) or {}).get('state') == 'Z']


def live_children_of(pid):
        return [c for c in children_of(pid) if (proc_stat(c) or {}).get('state') not in
                (None, 'Z', 'X')]


def wchan(pid):
        """Where in the kernel @pid sleeps ('poll_schedule_timeout.constprop.0', ...), '0' when
        it runs, '' when it is gone."""
        try:
                with open(f'/proc/{pid}/wchan') as f:
                        return f.read().strip()
        except (FileNotFoundError, ProcessLookupError):
                return ''


def waits_only_in_poll(pid):
        """None while @pid is running or sleeps in poll(2), the only place echod's parent
        may wait; otherwise what it is doing instead ('D in ...', 'S in sk_wait_data')."""
        st, where = proc_stat(pid), wchan(pid)
        if st is None:
                return 'gone'
        # wchan "0": it ran by the time wchan was read, after stat said it slept.
        if st['state'] == 'R' or where == '0' or (st['state'] == 'S' and 'poll' in where):
                return None
        return f'{st["state"]} in {where}'


def cpu_seconds(pid):
        """User plus system CPU time @pid has used, in seconds (0 once it is gone)."""
        st = proc_stat(pid)
        return (st['utime'] + st['stime']) / CLOCK_TICKS if st else 0.0


def resident_kib(pid):
        """VmRSS of @pid in KiB (0 once it is gone)."""
        try:
                with open(f'/proc/{pid}/status') as f:
                        for line in f:
                                if line.startswith('VmRSS:'):
                                        return int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
                pass
        return 0


def open_fds(pid):
        """{fd: what it points to} for @pid; a descriptor closed while we look is left out."""
        fds = {}
        for fd in os.listdir(f'/proc/{pid}/fd'):
                try:
                        fds[int(fd)] = os.readlink(f'/proc/{pid}/fd/{fd}')
                except FileNotFoundError:
                        pass
        return fds


def lowest_free_fd(pid):
        used = {int(fd) for fd in os.listdir(f'/proc/{pid}/fd')}
        return next(fd for fd in range(len(used) + 1) if fd not in used)


def exhaust_fds(pid):
        """Lowers @pid's RLIMIT_NOFILE to its lowest free descriptor, so that its next
        accept() fails with EMFILE; returns the limits to restore with restore_fds().

        The limit is lowered on the running process (prlimit), not set at exec: echod closes
        each accepted connection right after fork, so any limit it can start with leaves room
        for accept. A descriptor open only for a moment (sd_notify()'s socket) would make the
        lowest free one look higher: the least of a few looks is taken."""
        limits = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        looks = []
        for _ in range(20):
                looks.append(lowest_free_fd(pid))
                time.sleep(0.01)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (min(looks), limits[1]))
        return limits


def restore_fds(pid, limits):
        resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)


def _soft_limit(soft, hard):
        """@soft, but no higher than @hard (either may be RLIM_INFINITY)."""
        if hard == resource.RLIM_INFINITY:
                return soft
        return hard if soft == resource.RLIM_INFINITY else min(soft, hard)


def set_limit_as_owner(pid, which, soft, owner=None):
        """Sets the soft limit @which (a resource.RLIMIT_*) of @pid, a process of the user
        @owner (a pwd entry; None: ours), to @soft, keeping its hard limit; returns the old
        soft limit. prlimit(2) on another user's process needs CAP_SYS_RESOURCE, which root
        in a container may lack: a forked child takes the owner's identity and does it."""
        if owner is None or owner.pw_uid == os.getuid():
                old, hard = resource.prlimit(pid, which)
                resource.prlimit(pid, which, (_soft_limit(soft, hard), hard))
                return old
        reader, writer = os.pipe()
        child = os.fork()
        if child == 0:          # only system calls here: the parent has threads
                try:
                        os.close(reader)
                        os.setgroups([])
                        os.setgid(owner.pw_gid)
                        os.setuid(owner.pw_uid)
                        old, hard = resource.prlimit(pid, which)
                        resource.prlimit(pid, which, (_soft_limit(soft, hard), hard))
                        os.write(writer, str(old).encode())
                        os._exit(0)
                except BaseException:
                        os._exit(1)
        os.close(writer)
        with os.fdopen(reader) as f:
                answer = f.read()
        _, status = os.waitpid(child, 0)
        expect(status == 0 and answer, f'setting limit {which} of {pid} as {owner.pw_name} '
                                       f'failed (wait status {status})')
        return int(answer)


def attempts_logged(lines):
        """How many failures rate-limited lines stand for: each line, plus the "(N similar
        messages suppressed)" it carries."""
        return sum(1 + int(m.group(1)) if (m := re.search(r'\((\d+) similar', line)) else 1
                   for line in lines)


# The back-off starts at 100 ms, so a failing accept or fork is tried at most ten times a
# second, however busy the machine; and a daemon that backs off needs little CPU meanwhile.
MAX_CPU_DURING_FAULT = 1.0


def expect_backed_off(failures, cpu_used, seconds, what):
        """@failures: the log lines of an accept or fork that kept failing for @seconds;
        @cpu_used: the daemon's CPU time meanwhile. It must have stayed nearly idle, tried no
        more often than its back-off allows (a spinning daemon starved of CPU by a busy
        machine still retries far more often), and said so about once a second."""
        expect(cpu_used < MAX_CPU_DURING_FAULT,
               f'expected under {MAX_CPU_DURING_FAULT} s of CPU in {seconds} s of {what} '
               f'failures, the daemon used {cpu_used:.2f} s')
        max_attempts = 10 * seconds + 1
        expect(attempts_logged(failures) <= max_attempts,
               f'expected at most {max_attempts} {what} tries in {seconds} s, the log counts '
               f'{attempts_logged(failures)}: {failures}')
        expect(len(failures) <= seconds + 2,
               f'expected the {what} failure logged about once a second, got {len(failures)} '
               f'lines: {failures}')


def cmdline(pid):
        """The raw /proc/PID/cmdline of @pid, b'' when it is gone."""
        try:
                with open(f'/proc/{pid}/cmdline', 'rb') as f:
                        return f.read()
        except (FileNotFoundError, ProcessLookupError):
                return b''


def processes_running(wanted):
        """PIDs of the live processes (not zombies) whose raw command line is @wanted: a forked
        child keeps its parent's, so this finds a daemon's children even as orphans."""
        found = []
        for entry in os.listdir('/proc'):
                if not entry.isdigit():
                        continue
                st = proc_stat(int(entry))
                if cmdline(entry) == wanted and st and st['state'] not in ('Z', 'X'):
                        found.append(int(entry))
        return sorted(found)


def linked_libraries(path):
        """{soname: path} of the libraries @path loads (ldd)."""
        out = subprocess.run(['ldd', path], capture_output=True, text=True).stdout
        return {m.group(1): m.group(2) for m in re.finditer(r'^\s*(\S+) => (\S+)', out, re.M)}


def sanitizer_runtime():
        """The ASan runtime the daemon under test is built with, or None: a library
        preloaded into it must come after it (ASan insists on being first)."""
        return next((path for name, path in linked_libraries(ECHOD).items()
                     if name.startswith('libasan.so')), None)


def preload(*libraries):
        """LD_PRELOAD's value for the daemon, with @libraries, behind the sanitizer's
        runtime when it has one."""
        runtime = sanitizer_runtime()
        return ':'.join(([runtime] if runtime else []) + list(libraries))


def processes_in_group(pgrp):
        """PIDs of the live processes (not zombies) of process group @pgrp."""
        found = []
        for entry in os.listdir('/proc'):
                if entry.isdigit():
                        st = proc_stat(int(entry))
                        if st and st['pgrp'] == pgrp and st['state'] not in ('Z', 'X'):
                                found.append(int(entry))
        return sorted(found)


def snapshot(pids):
        """{pid: starttime} of @pids, to tell later whether these very processes still run."""
        return {pid: st['starttime'] for pid in pids if (st := proc_stat(pid))}


def still_running(snap):
        """The processes of @snap (from snapshot()) that still run, not counting zombies."""
        running = []
        for pid, starttime in snap.items():
                st = proc_stat(pid)
                if st and st['starttime'] == starttime and st['state'] not in ('Z', 'X'):
                        running.append(pid)
        return running


def kill_if_running(snap, signo=signal.SIGKILL):
        for pid in still_running(snap):
                try:
                        os.kill(pid, signo)
                except ProcessLookupError:
                        pass


# --- the notify socket -------------------------------------------------------------------------

class NotifySocket:
        """A real NOTIFY_SOCKET: an AF_UNIX datagram socket the daemon's messages go to.
        Like systemd, it reads all the time (a thread), unless a test stalls it (stall()),
        as a busy PID 1 would. Every message is kept, parsed into {'READY': '1', 'STATUS':
        '...'}. Like systemd's fd store, it keeps the fds a message passes (FDSTORE=1), as
        sockets in the message's '_fds', at most @store_max of them (None: no limit): like
        PID 1, it closes every fd past that. FDSTOREREMOVE=1 closes the fds stored under
        that name, and BARRIER=1 closes the fd it carries, as PID 1 does once it has read
        every earlier message."""

        MAX_FDS = 253   # SCM_MAX_FD: the most one message can pass

        def __init__(self, path, store_max=None):
                self.path = path
                self.store_max = store_max
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.sock.bind(path)
                self.messages = []
                self.refused = 0        # fds closed because the store was full
                self.store = []         # [(name, socket)] held now
                self._arrived = threading.Condition()
                self._closing = False
                self._socket_lock = threading.Lock()    # the reader's, or go_away()'s
                self._reading = threading.Event()
                self._reading.set()
                self._reader = threading.Thread(target=self._read_all, daemon=True)
                self._reader.start()

        def close(self):
                self._closing = True
                self._reading.set()
                self._reader.join()
                self.sock.close()
                for _, sock in self.store:
                        sock.close()

        def stall(self):
                """Stops reading, as a PID 1 too busy for us: the daemon's queue fills."""
                self._reading.clear()

        def resume(self):
                self._reading.set()

        def go_away(self):
                """The socket is closed and its path removed, as if PID 1 had gone: sending
                fails (ECONNREFUSED, then ENOENT) until come_back()."""
                self._reading.clear()
                with self._socket_lock:
                        self.sock.close()
                        os.unlink(self.path)

        def come_back(self):
                """A new socket at the same path, read as before."""
                with self._socket_lock:
                        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                        self.sock.bind(self.path)
                self._reading.set()

        def _receive(self):
                """The next message, or None after 50 ms without one (or while stalled)."""
                with self._socket_lock:
                        if not self._reading.is_set():
                                return None
                        ready, _, _ = select.select([self.sock], [], [], 0.05)
                        if not ready:
                                return None
                        return self.sock.recvmsg(65536, socket.CMSG_SPACE(self.MAX_FDS * 4))

        def _read_all(self):
                while not self._closing:
                        self._reading.wait()
                        received = self._receive()
                        if not received:
                                continue
                        data, ancillary, _, _ = received
                        fields = dict(line.partition('=')[::2]
                                      for line in data.decode(errors='replace').splitlines()
                                      if '=' in line)
                        fds = []
                        for level, kind, payload in ancillary:
                                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                                        fds += struct.unpack(f'{len(payload) // 4}i',
                                                             payload[:len(payload) // 4 * 4])
                        fields['_at'] = time.monotonic()
                        with self._arrived:
                                self._take(fields, fds)
                                self.messages.append(fields)
                                self._arrived.notify_all()

        def _take(self, fields, fds):
                """What PID 1 does with a message's fds."""
                if fields.get('FDSTORE') == '1':
                        kept = []
                        for fd in fds:
                                if self.store_max is not None and \
                                   len(self.store) >= self.store_max:
                                        os.close(fd)
                                        self.refused += 1
                                        continue
                                sock = socket.socket(fileno=fd)
                                self.store.append((fields.get('FDNAME'), sock))
                                kept.append(sock)
                        fields['_fds'] = kept
                        return
                if fields.get('FDSTOREREMOVE') == '1':
                        name = fields.get('FDNAME')
                        for _, sock in [x for x in self.store if x[0] == name]:
                                sock.close()
                        self.store = [x for x in self.store if x[0] != name]
                for fd in fds:          # BARRIER=1, or fds nobody asked for
                        os.close(fd)

        def wait_for(self, predicate, timeout, start=0):
                """The index of the first message from @start on that satisfies @predicate,
                waiting for up to @timeout seconds; None if none came."""
                deadline = time.monotonic() + timeout
                i = start
                with self._arrived:
                        while True:
                                for i in range(i, len(self.messages)):
                                        if predicate(self.messages[i]):
                                                return i
                                i = max(i, len(self.messages))
                                left = deadline - time.monotonic()
                                if left <= 0:
                                        return None
                                self._arrived.wait(left)

        def wait_for_status(self, status, timeout, start=0):
                return self.wait_for(lambda m: m.get('STATUS') == status, timeout, start)

        def wait_for_count(self, key, n, timeout, value='1'):
                """Whether @n messages with @key=@value came, waiting for up to @timeout s."""
                matches = [0]

                def nth_match(message):
                        matches[0] += message.get(key) == value
                        return matches[0] >= n
                return self.wait_for(nth_match, timeout) is not None

        def watchdog_times(self):
                """When each WATCHDOG=1 arrived (time.monotonic())."""
                return [m['_at'] for m in list(self.messages) if m.get('WATCHDOG') == '1']

        def statuses(self):
                return [m['STATUS'] for m in list(self.messages) if 'STATUS' in m]

        def stored(self):
                """The FDSTORE=1 messages so far, as (name, [sockets kept])."""
                return [(m.get('FDNAME'), m.get('_fds', [])) for m in list(self.messages)
                        if m.get('FDSTORE') == '1']

        def held(self):
                """What the store holds now: [(name, socket)]."""
                with self._arrived:
                        return list(self.store)

        def count(self, key, value='1'):
                return sum(1 for m in list(self.messages) if m.get(key) == value)


# --- the daemon --------------------------------------------------------------------------------

class Daemon:
        """echod under test, as its own process with stderr in a file of its own temp dir.

        @args may hold '{port}' (a free TCP port, retried if someone takes it first) and
        '{tmp}' (the temp dir). With @activate (an -l address for systemd-socket-activate,
        same placeholders) the daemon runs behind systemd-socket-activate, Accept=no unless
        @accept, with --inetd passing if @inetd, a socket of @socket_type ('datagram',
        'seqpacket') instead of a stream socket if given. Standalone, the daemon is ready when
        READY=1 arrives; activated, when systemd-socket-activate listens (the daemon itself
        starts on the first connection). @watchdog_usec sets WATCHDOG_USEC, and WATCHDOG_PID
        to the daemon's PID. @user (a pwd entry; standalone only, needs root) runs the daemon
        as that user, without supplementary groups. @fd_store sets FDSTORE (the store's size,
        as systemd does): the notify socket then keeps what the daemon stores, at most
        @store_max fds (None: as many as it is sent). @passed, [(name, socket)], are passed
        as systemd passes sockets (LISTEN_FDS, from fd 3, in that order; see pass-fds): a
        listening socket first, whose address clients then use, then connections the fd
        store kept, which the notify socket holds from the start, as PID 1's store would.
        @under, a command and its arguments, runs the daemon (e.g. [WITHOUT_SYSCALL,
        'close_range']). @env holds more variables for the daemon (e.g. LD_PRELOAD).
        @reports_expected: a test that provokes sanitizer reports on purpose checks them
        itself.
        """

        def __init__(self, args=(), *, activate=None, accept=False, inetd=False,
                     socket_type=None, notify=True, watchdog_usec=None, user=None,
                     fd_store=None, store_max=None, passed=None, under=(), env=None,
                     reports_expected=False):
                self.args = list(args)
                self.activate = activate
                self.accept = accept
                self.inetd = inetd
                self.socket_type = socket_type
                self.use_notify = notify
                self.watchdog_usec = watchdog_usec
                self.user = user
                self.fd_store = fd_store
                self.store_max = store_max
                self.passed = list(passed or [])
                self.under = list(under)
                self.extra_env = dict(env or {})
                self.reports_expected = reports_expected
                self.tmp = tempfile.mkdtemp(prefix='echod-test-')
                # As RuntimeDirectory=: where echo.service's ExecStop= says what a stop is.
                self.run_dir = os.path.join(self.tmp, 'run')
                os.mkdir(self.run_dir)
                self.executable = ECHOD
                self.acceptor_program = ACCEPTOR
                self.notify = None
                self.process = None
                self.port = None
                self.listen_text = None
                self.returncode = None
                self.cmdline = b''
                self._seen_children = {}

        # -- starting --

        def __enter__(self):
                try:
                        self.start()
                except BaseException:
                        self.cleanup()
                        raise
                return self

        def __exit__(self, exc_type, exc, tb):
                if exc_type is not None:        # show what the daemon said, to diagnose
                        lines = self.stderr_text().splitlines()[-40:]
                        print('daemon stderr (last lines):', *lines, sep='\n  ',
                              file=sys.stderr)
                errors = self.cleanup()
                if exc_type is None and errors:
                        fail(errors)
                return False

        def _command(self, args):
                daemon = self.under + WRAPPER + [self.executable] + args
                if self.activate is None:
                        command = daemon
                else:
                        command = [require_tool('systemd-socket-activate'), '-l',
                                   self.listen_text]
                        command += ['--accept'] if self.accept else []
                        command += ['--inetd'] if self.inetd else []
                        command += [f'--{self.socket_type}'] if self.socket_type else []
                        for name, value in self._daemon_env().items():
                                command += ['-E', f'{name}={value}']
                        command += ['--'] + daemon
                if self.passed:
                        spec = ','.join(f'{sock.fileno()}:{name}' for name, sock in self.passed)
                        command = [sys.executable, PASS_FDS, spec] + command
                if self.watchdog_usec is not None:
                        # sd_watchdog_enabled() wants WATCHDOG_PID to be the daemon's own PID:
                        # the shell's $$, kept by exec.
                        command = ['sh', '-c', 'WATCHDOG_PID=$$ exec "$@"', 'sh'] + command
                return command

        def _daemon_env(self):
                """The variables the daemon itself must see (through -E when activated)."""
                env = {}
                if self.notify:
                        env['NOTIFY_SOCKET'] = self.notify.path
                if self.watchdog_usec is not None:
                        env['WATCHDOG_USEC'] = str(self.watchdog_usec)
                if self.fd_store is not None:
                        env['FDSTORE'] = str(self.fd_store)
                        env['RUNTIME_DIRECTORY'] = self.run_dir
                if self.acceptor_program:
                        env['ECHOD_ACCEPTOR'] = self.acceptor_program
                env.update({k: self._format(v) for k, v in self.extra_env.items()})
                if self.activate is not None:
                        env.update({k: os.environ[k] for k in _PASSED_VARIABLES
                                    if k in os.environ})
                return env

        def _process_env(self):
                env = {k: v for k, v in os.environ.items() if k not in _DAEMON_VARIABLES}
                if self.activate is None:
                        env.update(self._daemon_env())
                return env

        def _format(self, text):
                return text.format(port=self.port, tmp=self.tmp)

        def start(self):
                if self.use_notify:
                        self.notify = NotifySocket(os.path.join(self.tmp, 'notify'),
                                                   store_max=self.store_max)
                        self.notify.store = [(name, sock.dup()) for name, sock in self.passed
                                             if name.startswith('echod-conn-')]
                if self.user:   # sd_notify() connects to the socket as that user
                        os.chmod(self.tmp, 0o711)
                        if self.notify:
                                os.chmod(self.notify.path, 0o666)
                        self.executable = self._copy_for_user()
                needs_port = any('{port}' in a for a in self.args + [self.activate or ''])
                for _ in range(5):
                        self.port = free_port() if needs_port else None
                        if self._start_once():
                                return
                        if not needs_port or 'in use' not in self.stderr_text():
                                break
                        os.truncate(self.stderr_path, 0)
                fail(f'the daemon did not start (exit status {self.returncode}): '
                     f'{self.stderr_text().strip()!r}')

        def _copy_for_user(self):
                """The build tree may be where @user cannot go (a clone in /root, mode 700):
                run a copy of the daemon, and of its acceptor, from the temp dir, which that
                user can enter."""
                for name, source in (('echod', ECHOD), ('echod-acceptor', ACCEPTOR)):
                        shutil.copyfile(source, os.path.join(self.tmp, name))
                        os.chmod(os.path.join(self.tmp, name), 0o755)
                self.acceptor_program = os.path.join(self.tmp, 'echod-acceptor')
                return os.path.join(self.tmp, 'echod')

        def _start_once(self):
                args = [self._format(a) for a in self.args]
                self.listen_text = self._format(self.activate) if self.activate else None
                if self.listen_text is None and self.passed:
                        host, port = self.passed[0][1].getsockname()[:2]
                        self.listen_text = f'[{host}]:{port}' if ':' in host else f'{host}:{port}'
                if self.listen_text is None:
                        for flag, value in zip(args, args[1:]):
                                if flag in ('-l', '--listen'):
                                        self.listen_text = value
                                        break
                self.stderr_path = os.path.join(self.tmp, 'stderr')
                self.stdout_path = os.path.join(self.tmp, 'stdout')
                identity = {}
                if self.user:
                        identity = dict(user=self.user.pw_uid, group=self.user.pw_gid,
                                        extra_groups=[], cwd=self.tmp)
                with open(self.stderr_path, 'ab') as err, open(self.stdout_path, 'ab') as out:
                        self.process = subprocess.Popen(
                                self._command(args), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, env=self._process_env(),
                                pass_fds=[sock.fileno() for _, sock in self.passed],
                                start_new_session=True, **identity)
                self.pid = self.process.pid
                if self.activate is not None:
                        ready = lambda: 'Listening on' in self.stderr_text()
                else:
                        ready = lambda: (self.notify.wait_for(lambda m: m.get('READY') == '1',
                                                              0.05) is not None)
                wait_until(lambda: ready() or self.process.poll() is not None, bound(10))
                if self.process.poll() is not None:
                        self.returncode = self.process.returncode
                        return False
                expect(ready(), f'the daemon did not become ready within {bound(10)} s: '
                                f'{self.stderr_text().strip()!r}')
                self.cmdline = cmdline(self.pid)
                return True

        def skip_without_subreaper(self):
                """Skips a test of what echod does with the children of an acceptor that
                died, where echod could not become their reaper: qemu-user does not emulate
                PR_SET_CHILD_SUBREAPER (a real kernel of the same architecture, in a VM,
                runs the test)."""
                if self.log_lines('cannot become the reaper'):
                        skip('echod cannot be a subreaper here (PR_SET_CHILD_SUBREAPER: '
                             'EINVAL, as under qemu-user)')

        def announce_stop(self, job='restart', fd_store=None):
                """What echo.service's ExecStop= (echod-unit-info stop) writes before
                systemd's SIGTERM: the job that stops the unit (restart, stop) and the store's
                size PID 1 enforces now (@fd_store; by default the one the daemon started
                with). Without it, a SIGTERM is no restart: nothing is handed over."""
                size = self.fd_store if fd_store is None else fd_store
                path = os.path.join(self.run_dir, 'stop')
                with open(path + '.tmp', 'w') as f:
                        f.write(f'JOB={job}\nFDSTORE={"" if size is None else size}\n')
                os.rename(path + '.tmp', path)

        # -- looking at it --

        @property
        def address(self):
                """Where clients connect."""
                return client_address(self.listen_text)

        def connect(self, address=None, timeout=None, source=None):
                address = address or self.address
                try:
                        return connect(address, timeout, source)
                except ConnectionRefusedError:
                        fail(f'connecting to {address}: refused; daemon stderr: '
                             f'{self.stderr_text().strip()!r}')

        def stderr_text(self):
                try:
                        with open(self.stderr_path, errors='replace') as f:
                                return f.read()
                except (AttributeError, FileNotFoundError):
                        return ''

        def expect_status(self, status, start=0, timeout=None):
                """Waits for STATUS=@status (from message @start on); returns its index."""
                seen = self.notify.wait_for_status(status, bound(5) if timeout is None
                                                   else timeout, start)
                expect(seen is not None, f'expected STATUS={status!r}, saw '
                                         f'{self.notify.statuses()[-5:]}')
                return seen

        def log_lines(self, containing=''):
                """The daemon's "echod: ..." stderr lines that contain @containing."""
                return [line for line in self.stderr_text().splitlines()
                        if line.startswith('echod: ') and containing in line]

        def acceptor(self, timeout=None):
                """The acceptor's PID (the daemon's child that accepts and forks), once its
                main() runs (within @timeout s), or None. Its name alone does not say so: exec'd
                by path, it has it before the loader has mapped its libraries and run their
                constructors (a preload's, say); its signalfd is made in main()."""
                def in_main(pid):
                        try:
                                return 'anon_inode:[signalfd]' in open_fds(pid).values()
                        except OSError:
                                return False

                def find():
                        for pid in children_of(self.pid):
                                st = proc_stat(pid) or {}
                                if st.get('comm') == ACCEPTOR_COMM and \
                                   st.get('state') not in ('Z', 'X') and in_main(pid):
                                        return pid
                        return None
                return wait_until(find, bound(5) if timeout is None else timeout)

        def _connection_processes(self):
                """The children serving connections: the acceptor's, and those the daemon
                adopted when an acceptor died (its other children); zombies included. For
                systemd-socket-activate --accept, the daemons it started, one per connection."""
                acceptors, others = [], []
                for pid in children_of(self.pid):
                        comm = (proc_stat(pid) or {}).get('comm')
                        (acceptors if comm == ACCEPTOR_COMM else others).append(pid)
                pids = others + [c for a in acceptors for c in children_of(a)]
                self._seen_children.update(snapshot(pids))
                return sorted(pids)

        def children(self):
                """The processes serving connections now (zombies included); remembered for
                cleanup."""
                return self._connection_processes()

        def live_children(self):
                return [pid for pid in self._connection_processes()
                        if (proc_stat(pid) or {}).get('state') not in (None, 'Z', 'X')]

        def zombies(self):
                return [pid for pid in self._connection_processes()
                        if (proc_stat(pid) or {}).get('state') == 'Z']

        def running(self):
                return self.process.poll() is None

        def survivors(self):
                """The daemon's processes other than itself (the acceptor, the children),
                and once it has exited, any it left behind: all of them run in the process
                group the daemon started in, its own."""
                return [pid for pid in processes_in_group(self.process.pid) if pid != self.pid]

        def cpu_seconds(self):
                """CPU time of the daemon and of its acceptor: the processes that must never
                spin, whatever the clients do."""
                acceptor = self.acceptor(timeout=0)
                return cpu_seconds(self.pid) + (cpu_seconds(acceptor) if acceptor else 0)

        # -- stopping --

        def signal(self, signo):
                if self.running():
                        os.kill(self.pid, signo)

        def wait_exit(self, timeout):
                """The exit status, or fails if the daemon still runs after @timeout."""
                try:
                        self.returncode = self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                        fail(f'the daemon still runs {timeout} s later')
                return self.returncode

        def terminate(self, timeout=None):
                """SIGTERM, then the exit status once it exits."""
                self.signal(signal.SIGTERM)
                return self.wait_exit(bound(10) if timeout is None else timeout)

        def wrapper_errors(self):
                """What valgrind or a sanitizer reported, as a failure message, or ''."""
                if self.reports_expected:
                        return ''
                text = self.stderr_text()
                found = wrapper_reports(text)
                if self.returncode == 99 and WRAPPER:
                        found.append('the daemon exited 99 (the wrapper\'s error exit code)')
                if not found:
                        return ''
                return 'the wrapper reported errors:\n' + text

        def cleanup(self):
                """Kills whatever still runs, children first (by PID, before they can be
                reparented), removes the temp dir; returns wrapper errors, if any."""
                errors = ''
                if self.process:
                        if self.running():
                                self.children()
                                kill_if_running(self._seen_children)
                                acceptor = self.acceptor(timeout=0)
                                if acceptor:
                                        os.kill(acceptor, signal.SIGKILL)
                                self.process.kill()
                                self.process.wait()
                        kill_if_running(self._seen_children)
                        kill_if_running(snapshot(processes_in_group(self.process.pid)))
                        self.returncode = self.process.returncode
                        errors = self.wrapper_errors()
                if self.notify:
                        self.notify.close()
                shutil.rmtree(self.tmp, ignore_errors=True)
                return errors


def run_echod(args, timeout=None, env=None, stdin=subprocess.DEVNULL):
        """Runs the daemon to completion (for options and start-up failures); returns
        (exit status, stdout, stderr). Fails if a wrapper reported errors."""
        clean = {k: v for k, v in os.environ.items() if k not in _DAEMON_VARIABLES}
        clean.update(env or {})
        try:
                done = subprocess.run(WRAPPER + [ECHOD] + list(args), stdin=stdin,
                                      capture_output=True, env=clean,
                                      timeout=bound(10) if timeout is None else timeout)
        except subprocess.TimeoutExpired:
                fail(f'echod {" ".join(args)}: still running after the time bound')
        stderr = done.stderr.decode(errors='replace')
        if wrapper_reports(stderr) or (WRAPPER and done.returncode == 99):
                fail(f'echod {" ".join(args)}: the wrapper reported errors:\n{stderr}')
        return done.returncode, done.stdout.decode(errors='replace'), stderr


def wrapper_reports(stderr):
        """The lines of @stderr in which valgrind (which, with --quiet, says nothing unless
        something is wrong: "==PID== ...") or a sanitizer reports a problem."""
        return [line for line in stderr.splitlines()
                if re.match(r'==\d+== |valgrind: ', line)
                or re.search(r'ERROR SUMMARY: [1-9]|(Address|Leak|UndefinedBehavior)Sanitizer|'
                             r'runtime error:', line)]


def expect_clean_exit(daemon):
        """SIGTERM; the daemon must exit 0."""
        status = daemon.terminate()
        expect(status == 0, f'after SIGTERM: expected exit status 0, got {status}; stderr: '
                            f'{daemon.stderr_text().strip()!r}')


def echod_lines(stderr):
        """The lines the daemon itself wrote ("echod: ..."), without a wrapper's lines."""
        return [line for line in stderr.splitlines() if line.startswith('echod: ')]
