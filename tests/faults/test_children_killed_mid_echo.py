#!/usr/bin/env python3
"""Children SIGKILLed mid-echo: 12 clients stream data back and forth without pause; half of
their children are killed at once. The daemon reaps every one (no zombie), STATUS counts the
rest, the kills are logged at most once a second, the other six streams go on with every byte
right, and new clients are served."""
import os
import signal
import threading
import time

from echod_test import (Daemon, bound, expect, expect_clean_exit, expect_still_serving, run,
                        wait_until)

N_STREAMS = 12
N_KILLED = 6
CHUNK = 32 * 1024
MAX_CPU_SECONDS = 1.0


class Stream:
        """A client that sends a chunk and reads its echo, again and again, until stopped;
        it notes whether its connection was cut and whether any byte came back wrong."""

        def __init__(self, sock):
                self.sock = sock
                self.rounds = 0
                self.cut = None
                self.wrong = None
                self.stop = threading.Event()
                self.thread = threading.Thread(target=self._run, daemon=True)
                self.thread.start()

        def _run(self):
                self.sock.settimeout(bound(10))
                while not self.stop.is_set():
                        data = os.urandom(CHUNK)
                        try:
                                self.sock.sendall(data)
                                echoed = b''
                                while len(echoed) < len(data):
                                        chunk = self.sock.recv(len(data) - len(echoed))
                                        if not chunk:
                                                raise ConnectionResetError('end of stream')
                                        echoed += chunk
                        except OSError as e:
                                self.cut = repr(e)
                                return
                        if echoed != data:
                                self.wrong = f'round {self.rounds}: other bytes came back'
                                return
                        self.rounds += 1


def killed_children_are_reaped_and_others_go_on():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                streams = [Stream(daemon.connect()) for _ in range(N_STREAMS)]
                expect(wait_until(lambda: all(s.rounds > 2 for s in streams), bound(10)),
                       'the streams did not get going')
                children = daemon.live_children()
                expect(len(children) == N_STREAMS, f'expected {N_STREAMS} children, saw '
                                                   f'{children}')
                seen = daemon.expect_status(f'{N_STREAMS} active, {N_STREAMS} total connections')

                cpu_before = daemon.cpu_seconds()
                victims = children[:N_KILLED]
                for pid in victims:
                        os.kill(pid, signal.SIGKILL)

                daemon.expect_status(f'{N_STREAMS - N_KILLED} active, {N_STREAMS} total '
                                     'connections', seen + 1)
                expect(wait_until(lambda: sum(s.cut is not None for s in streams) == N_KILLED,
                                  bound(5)),
                       f'expected {N_KILLED} streams cut, saw '
                       f'{sum(s.cut is not None for s in streams)}')
                expect(not daemon.zombies(), f'zombies left: {daemon.zombies()}')
                expect(not set(victims) & set(daemon.children()),
                       'a killed child is still a child of the daemon')
                alive = [s for s in streams if s.cut is None]
                rounds_before = [s.rounds for s in alive]
                time.sleep(1)
                stalled = [s for s, r in zip(alive, rounds_before) if s.rounds == r]
                expect(not stalled, f'{len(stalled)} surviving streams stalled after the kills')
                cpu_used = daemon.cpu_seconds() - cpu_before
                expect(cpu_used < MAX_CPU_SECONDS,
                       f'the daemon used {cpu_used:.2f} s of CPU reaping {N_KILLED} children')

                for s in streams:
                        s.stop.set()
                        s.thread.join(bound(10))
                wrong = [s.wrong for s in streams if s.wrong]
                expect(not wrong, f'bytes came back wrong: {wrong}')
                survivors = [s for s in streams if s.cut is None]
                expect(len(survivors) == N_STREAMS - N_KILLED,
                       f'expected {N_STREAMS - N_KILLED} streams intact, '
                       f'{len(survivors)} are: {[s.cut for s in streams]}')
                killed = daemon.log_lines('killed by signal KILL')
                expect(1 <= len(killed) <= 2, f'expected the kills logged once or twice (at '
                                              f'most once a second), saw {killed}')

                for s in streams:
                        s.sock.close()
                expect_still_serving(daemon, 'after the kills')
                daemon.expect_status(f'0 active, {N_STREAMS + 1} total connections')
                expect(not daemon.children(), f'children left: {daemon.children()}')
                expect_clean_exit(daemon)


run(killed_children_are_reaped_and_others_go_on)
