#!/usr/bin/env python3
"""After a restart, connections resumed from the fd store count for
--max-connections-per-source like any other, however many there are: 20 resumed connections
from 20 client addresses (127.0.0.1-20), with --max-connections 12 and a limit of 1 per
source. Once 9 of them end (the cap frees up), a new connection from an address that still
holds a resumed one is refused at once; one from a free address is echoed. (The table of
sources was sized for --max-connections alone: past it, resumed sources went uncounted.)"""
from echod_test import (Daemon, bound, connect, expect, expect_echo, is_closed_by_peer,
                        listening_socket, run, wait_until)

N = 20


def resumed_connections_count_per_source():
        listener = listening_socket()
        port = listener.getsockname()[1]
        clients, kept = [], []
        for i in range(1, N + 1):
                clients.append(connect(('127.0.0.1', port), bound(5), f'127.0.0.{i}'))
                server_end, _ = listener.accept()
                kept.append((f'echod-conn-1-{i}', server_end))
        with Daemon(['--max-connections', '12', '--max-connections-per-source', '1'],
                    passed=[('echo.socket', listener)] + kept, fd_store=64) as daemon:
                for i, sock in enumerate(clients):
                        expect_echo(sock, b'resumed %d' % i)
                for sock in clients[:9]:
                        sock.close()
                expect(wait_until(lambda: len(daemon.live_children()) == N - 9, bound(3)),
                       f'{len(daemon.live_children())} children, not {N - 9}')

                again = connect(daemon.address, bound(5), f'127.0.0.{N}')
                expect(wait_until(lambda: is_closed_by_peer(again), bound(3)),
                       f'a second connection from 127.0.0.{N}, which holds a resumed one, '
                       'was not refused')
                fresh = connect(daemon.address, bound(5), '127.0.0.1')
                expect_echo(fresh, b'a free address')
                for sock in clients[9:] + [again, fresh]:
                        sock.close()
        for _, sock in kept:
                sock.close()
        listener.close()


run(resumed_connections_count_per_source)
