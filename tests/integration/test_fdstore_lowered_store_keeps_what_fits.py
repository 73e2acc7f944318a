#!/usr/bin/env python3
"""An administrator lowers FileDescriptorStoreMax= (a drop-in, daemon-reload) while echod
runs: PID 1 then closes every store past the new size, and still answers the barrier after
it, so echod, counting with the size it started with, tells children their connections are
stored when they are not. At the restart, ExecStop= says the size PID 1 enforces now, and
echod, whose count went past it, stores its connections again, up to that size.

A store of 30 at the start, lowered to 3 before any store; 6 connections, each told it is
stored. Every client sends 12 MiB while reading nothing (its receive buffer kept small),
more than the sockets buffer, so that each child has bytes it has not read yet when the
restart comes; then each reads. 3 connections are handed over: what the client got and what the next instance finds in the
connection make up all it sent, byte for byte. The 3 others end cleanly, never reset:
each client gets back a prefix of what it sent (what its child read until it stopped
reading), then the end of the stream, and can send the rest of its bytes, which the child
reads and drops. (Handed over without a store holding them, they would be reset.)"""
import os
import signal
import socket
import threading
import time

from echod_test import Daemon, bound, expect, expect_echo, read_available, run, wait_until

STARTED_WITH, LOWERED_TO, N = 30, 3, 6
PAYLOAD = 12 << 20


class Client:
        """Sends its payload in a thread; reads, once told to, in another, until the end of
        the stream, a reset, or 1 s of quiet."""

        def __init__(self, sock):
                self.sock = sock
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                self.payload = os.urandom(PAYLOAD)
                self.received = bytearray()
                self.outcome = None
                self.sent = None
                self.sender = threading.Thread(target=self._send, daemon=True)
                self.reader = threading.Thread(target=self._read, daemon=True)
                self.sender.start()

        def _send(self):
                try:
                        self.sock.sendall(self.payload)
                        self.sent = 'all'
                except OSError as e:
                        self.sent = f'failed: {e}'

        def _read(self):
                self.sock.settimeout(1.0)
                try:
                        while chunk := self.sock.recv(1 << 20):
                                self.received += chunk
                        self.outcome = 'end'
                except TimeoutError:
                        self.outcome = 'quiet'
                except ConnectionResetError:
                        self.outcome = 'reset'


def a_lowered_store_keeps_what_fits():
        with Daemon(['--listen', '127.0.0.1:{port}'], fd_store=STARTED_WITH) as daemon:
                daemon.notify.store_max = LOWERED_TO    # the drop-in, reloaded
                socks = [daemon.connect(timeout=bound(5)) for _ in range(N)]
                for i, sock in enumerate(socks):
                        expect_echo(sock, b'hello %d' % i)
                expect(wait_until(lambda: daemon.notify.refused == N - LOWERED_TO, bound(3)),
                       f'PID 1 refused {daemon.notify.refused} stores, not {N - LOWERED_TO}')
                time.sleep(0.5)         # confirmed by the barrier all the same, children told
                clients = [Client(sock) for sock in socks]
                time.sleep(1)           # every child is stuck with bytes it has not read

                daemon.announce_stop(fd_store=LOWERED_TO)
                daemon.signal(signal.SIGTERM)
                for c in clients:
                        c.reader.start()
                expect(daemon.wait_exit(bound(15)) == 0, 'echod did not exit 0')

                held = daemon.notify.held()
                expect(len(held) == LOWERED_TO, f'{len(held)} connections in the store, '
                                                f'not {LOWERED_TO}')
                copies = {sock.getpeername()[1]: sock for _, sock in held}
                for i, c in enumerate(clients):
                        copy = copies.get(c.sock.getsockname()[1])
                        if copy is None:
                                c.reader.join(bound(10))
                                c.sender.join(bound(10))
                                what = f'client {i} (not kept)'
                                expect(c.sent == 'all', f'{what}: sending {c.sent}')
                                expect(c.outcome == 'end', f'{what}: {c.outcome}, not the end '
                                                           f'of the stream')
                                expect(c.received == c.payload[:len(c.received)],
                                       f'{what}: got {len(c.received)} bytes, not a prefix '
                                       f'of what it sent')
                                continue
                        rest = read_available(copy, quiet=1.0)     # lets the sender finish, too
                        c.sender.join(bound(10))
                        rest += read_available(copy, quiet=1.0)
                        c.reader.join(bound(10))
                        expect(bytes(c.received) + rest == c.payload,
                               f'client {i} (kept): {len(c.received)} bytes echoed and '
                               f'{len(rest)} left for the next instance, of {PAYLOAD}')


run(a_lowered_store_keeps_what_fits)
