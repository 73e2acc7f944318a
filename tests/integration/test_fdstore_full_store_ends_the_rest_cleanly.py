#!/usr/bin/env python3
"""A store of 3 fds and 6 connections: 3 are kept, and echod says, once, that the others
are not. Each client then sends 48 KiB without reading, and the SIGTERM comes. The 3 kept
connections are handed over: what was not echoed yet is still in the connection, for the
next instance, byte for byte. The 3 others end as without a store: every byte their clients
sent is echoed, then the connection closes cleanly (end of stream, no reset)."""
import os
import signal
import time

from echod_test import (Daemon, bound, expect, expect_echo, expect_eof, read_available,
                        recv_exactly, run, wait_until)

SIZE, N = 3, 6
PAYLOAD = 48 * 1024


def connections_past_the_store_end_cleanly():
        with Daemon(['--listen', '127.0.0.1:{port}'], fd_store=SIZE, store_max=SIZE) as daemon:
                clients = [daemon.connect(timeout=bound(5)) for _ in range(N)]
                for i, sock in enumerate(clients):
                        expect_echo(sock, b'hello %d' % i)
                expect(wait_until(lambda: len(daemon.notify.held()) == SIZE, bound(2)),
                       f'{len(daemon.notify.held())} of {SIZE} connections stored')
                time.sleep(1.5)         # more flushes: still one line a second at most
                full = daemon.log_lines('fd store full')
                expect(1 <= len(full) <= 2, f'"fd store full" logged {len(full)} times: {full}')
                expect(daemon.notify.refused == 0,
                       f'{daemon.notify.refused} fds sent past the store\'s size')
                payloads = [os.urandom(PAYLOAD) for _ in clients]
                for sock, payload in zip(clients, payloads):
                        sock.sendall(payload)

                daemon.announce_stop()    # a restart, as ExecStop= says
                daemon.signal(signal.SIGTERM)
                expect(daemon.wait_exit(bound(5)) == 0, 'echod did not exit 0')

                copies = {sock.getpeername()[1]: sock for _, sock in daemon.notify.held()}
                n_kept = 0
                for i, (sock, payload) in enumerate(zip(clients, payloads)):
                        copy = copies.get(sock.getsockname()[1])
                        if copy is None:
                                got = recv_exactly(sock, PAYLOAD, timeout=bound(5),
                                                   what=f'client {i} (not kept)')
                                expect(got == payload, f'client {i} (not kept): wrong echo')
                                expect_eof(sock, what=f'client {i} (not kept)')
                                continue
                        n_kept += 1
                        echoed = read_available(sock)
                        rest = read_available(copy)
                        expect(echoed + rest == payload,
                               f'client {i} (kept): {len(echoed)} bytes echoed and '
                               f'{len(rest)} left for the next instance, of {PAYLOAD}')
                expect(n_kept == SIZE, f'{n_kept} connections kept, not {SIZE}')


run(connections_past_the_store_end_cleanly)
