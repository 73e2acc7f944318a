#!/usr/bin/env python3
"""NOTIFY_SOCKET: STATUS= counts the connections really open and served so far."""
from echod_test import Daemon, bound, expect, expect_clean_exit, expect_echo, run


def expect_status(daemon, status, timeout, start=0):
        seen = daemon.notify.wait_for_status(status, timeout, start)
        expect(seen is not None, f'expected STATUS={status!r} within {timeout} s, saw '
                                 f'{daemon.notify.statuses()}')
        return seen


def status_follows_open_and_closed_connections():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                clients = [daemon.connect() for _ in range(3)]
                for i, client in enumerate(clients):
                        expect_echo(client, f'client {i}'.encode())
                seen = expect_status(daemon, '3 active, 3 total connections', bound(3))

                for client in clients:
                        client.close()
                expect_status(daemon, '0 active, 3 total connections', bound(3), seen + 1)
                expect_clean_exit(daemon)


run(status_follows_open_and_closed_connections)
