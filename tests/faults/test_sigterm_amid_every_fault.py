#!/usr/bin/env python3
"""SIGTERM amid every fault at once: a flooder that never reads, silent clients, a child
SIGSTOPped, a child SIGKILLed, a reset storm, accept(2) failing with EMFILE, a well-behaved
client holding its echo and one in mid-transfer. With --shutdown-timeout 2 the daemon exits 0
within the timeout and a margin, killing the children still stuck at the timeout; no process
it forked outlives it; the client holding its echo sees a clean end of stream, and the one in
mid-transfer gets back a prefix of what it sent, then end of stream or a reset."""
import os
import signal
import threading
import time

from echod_test import (WRAPPER, Daemon, accept_backlog, bound, connect, exhaust_fds, expect,
                        expect_echo, expect_eof, flood, garbage, reset, run, wait_until)

SHUTDOWN_SECONDS = 2
N_SILENT = 3
MIDWAY_CHUNK = 16384
MIDWAY_PAUSE_SECONDS = 0.01
# Under valgrind each child costs a leak check as it exits.
N_STORM_CHILDREN = 20 if WRAPPER else 200
FAULT_SECONDS = 1
MAX_CPU_SECONDS = 1.0


def children_once_forked(daemon, n):
        """The daemon's live children, once there are @n: a client's connect() returns before
        the daemon accepts it."""
        expect(wait_until(lambda: len(daemon.live_children()) == n, bound(5)),
               f'expected {n} children, saw {daemon.live_children()}')
        return set(daemon.live_children())


class Midway:
        """A well-behaved client in mid-transfer: one thread sends a chunk every few ms, until
        the connection ends; another reads everything that comes back, until end of stream
        or a reset."""

        def __init__(self, sock):
                self.sock = sock
                self.sent = bytearray()
                self.received = bytearray()
                self.ended = None
                self.reader = threading.Thread(target=self._read, daemon=True)
                threading.Thread(target=self._send, daemon=True).start()
                self.reader.start()

        def _send(self):
                try:
                        while self.ended is None:
                                chunk = garbage(MIDWAY_CHUNK)
                                self.sent += chunk      # first: part of it may go out
                                self.sock.sendall(chunk)
                                time.sleep(MIDWAY_PAUSE_SECONDS)
                except OSError:
                        pass    # the daemon stopped reading and closed

        def _read(self):
                try:
                        while chunk := self.sock.recv(1 << 20):
                                self.received += chunk
                        self.ended = 'end of stream'
                except OSError as e:
                        self.ended = repr(e)


def storm(address, stop, counts, limit=None):
        """Connections opened and reset at once, until @stop is set or @limit were made."""
        while not stop.is_set() and (limit is None or counts['reset'] < limit):
                try:
                        reset(connect(address, timeout=1))
                        counts['reset'] += 1
                except OSError:
                        counts['failed'] += 1   # refused once the listener is closed
                        time.sleep(0.01)


def sigterm_ends_everything_cleanly():
        with Daemon(['--listen', '127.0.0.1:{port}', '--shutdown-timeout', str(SHUTDOWN_SECONDS),
                     '--idle-timeout', '60']) as daemon:
                holder = daemon.connect()
                held = garbage(5000)
                expect_echo(holder, held, what='the client holding its echo')

                midway = Midway(daemon.connect(timeout=bound(30)))

                silent = [daemon.connect() for _ in range(N_SILENT)]
                flooder = daemon.connect()
                threading.Thread(target=flood, args=(flooder, 50 << 20, bound(30)),
                                 daemon=True).start()

                before = children_once_forked(daemon, 3 + N_SILENT)
                stopped = daemon.connect()
                expect_echo(stopped, b'about to be stopped')
                [stopped_child] = children_once_forked(daemon, 4 + N_SILENT) - before
                os.kill(stopped_child, signal.SIGSTOP)

                before = children_once_forked(daemon, 4 + N_SILENT)
                killed = daemon.connect()
                expect_echo(killed, b'about to be killed')
                [killed_child] = children_once_forked(daemon, 5 + N_SILENT) - before
                os.kill(killed_child, signal.SIGKILL)

                # The storm first reaches children, then, with descriptors exhausted, the
                # backlog. The limit is lowered once the daemon has accepted what was queued:
                # a descriptor busy with an accept while exhaust_fds() looks would leave room.
                counts, no_stop = {'reset': 0, 'failed': 0}, threading.Event()
                storm(daemon.address, no_stop, counts, N_STORM_CHILDREN)
                expect(wait_until(lambda: accept_backlog(daemon.address) == 0, bound(10)),
                       'the storm stays in the backlog')
                exhaust_fds(daemon.acceptor())    # the process that accepts
                cpu_before = daemon.cpu_seconds()
                stop_storm = threading.Event()
                storm_thread = threading.Thread(target=storm, daemon=True, args=(
                        daemon.address, stop_storm, counts))
                storm_thread.start()
                expect(wait_until(lambda: daemon.log_lines('accept: Too many open files'),
                                  bound(5)), 'accept never failed with EMFILE')
                time.sleep(FAULT_SECONDS)
                daemon.children()       # remembered, for the clean-up if this test fails
                cpu_used = daemon.cpu_seconds() - cpu_before
                expect(cpu_used < MAX_CPU_SECONDS,
                       f'the daemon used {cpu_used:.2f} s of CPU in {FAULT_SECONDS} s of faults')

                started = time.monotonic()
                daemon.signal(signal.SIGTERM)
                status = daemon.wait_exit(SHUTDOWN_SECONDS + bound(5))
                elapsed = time.monotonic() - started
                stop_storm.set()
                storm_thread.join(bound(10))

                expect(status == 0, f'expected exit status 0 after SIGTERM, got {status}')
                expect(elapsed >= SHUTDOWN_SECONDS - 0.5,
                       f'exited after {elapsed:.1f} s: the stopped child cannot have finished')
                # Its children keep its command line, also as orphans adopted by init.
                left = daemon.survivors()
                expect(not left, f'processes forked by the daemon outlived it: {left}')
                stopped_lines = daemon.log_lines('stopped after')
                expect(stopped_lines and 'killed at the shutdown timeout' in stopped_lines[0]
                       and not stopped_lines[0].endswith(' 0 killed at the shutdown timeout'),
                       f'expected the stuck children killed at the timeout, saw {stopped_lines}')
                expect(counts['reset'] > 0, 'the reset storm never got through')

                expect_eof(holder, what='the client holding its echo')
                midway.reader.join(bound(5))
                expect(midway.ended, 'the connection of the client in mid-transfer stayed open')
                expect(len(midway.received) > 0 and
                       midway.received == midway.sent[:len(midway.received)],
                       f'the client in mid-transfer sent {len(midway.sent)} bytes and got '
                       f'{len(midway.received)} back, not a prefix of them')
                for sock in [holder, midway.sock, flooder, stopped, killed] + silent:
                        sock.close()


run(sigterm_ends_everything_cleanly)
