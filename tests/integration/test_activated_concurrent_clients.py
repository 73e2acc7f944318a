#!/usr/bin/env python3
"""Socket-activated (Accept=no): 200 clients connected at once are all served at once, each
getting its own bytes back."""
import random

from echod_test import Daemon, bound, expect, expect_clean_exit, recv_exactly, run

N_CLIENTS = 200


def concurrent_clients_each_get_their_own_echo():
        with Daemon(activate='127.0.0.1:{port}') as daemon:
                clients = [daemon.connect() for _ in range(N_CLIENTS)]
                try:
                        messages = [f'client {i}\n'.encode() + random.randbytes(1000)
                                    for i in range(N_CLIENTS)]
                        for client, message in zip(clients, messages):
                                client.sendall(message)
                        for i, (client, message) in enumerate(zip(clients, messages)):
                                echoed = recv_exactly(client, len(message), what=f'client {i}')
                                expect(echoed == message, f'client {i} got another client\'s '
                                                          f'bytes: {echoed[:20]!r}')

                        status = f'{N_CLIENTS} active, {N_CLIENTS} total connections'
                        seen = daemon.notify.wait_for_status(status, bound(5))
                        expect(seen is not None, f'expected STATUS={status!r} while all are '
                                                 f'open, saw {daemon.notify.statuses()[-3:]}')
                finally:
                        for client in clients:
                                client.close()

                status = f'0 active, {N_CLIENTS} total connections'
                seen = daemon.notify.wait_for_status(status, bound(10))
                expect(seen is not None, f'expected STATUS={status!r} once all closed, saw '
                                         f'{daemon.notify.statuses()[-3:]}')
                expect_clean_exit(daemon)


run(concurrent_clients_each_get_their_own_echo)
