#!/usr/bin/env python3
"""Socket-activated (Accept=no): 200 clients one after another are all echoed by one daemon,
which counts all of them."""
import random

from echod_test import Daemon, bound, expect, expect_clean_exit, expect_echo, run

N_CLIENTS = 200


def sequential_clients_are_all_echoed():
        with Daemon(activate='127.0.0.1:{port}') as daemon:
                for i in range(N_CLIENTS):
                        message = f'client {i}\n'.encode() + random.randbytes(100)
                        with daemon.connect() as client:
                                expect_echo(client, message, what=f'client {i}')

                status = f'0 active, {N_CLIENTS} total connections'
                seen = daemon.notify.wait_for_status(status, bound(5))
                expect(seen is not None, f'expected STATUS={status!r}, the last ones were '
                                         f'{daemon.notify.statuses()[-3:]}')
                expect_clean_exit(daemon)


run(sequential_clients_are_all_echoed)
