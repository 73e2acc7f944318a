#!/usr/bin/env python3
"""Regression: the sketch reaped one child per SIGCHLD, but SIGCHLDs that arrive together merge
into one, so children that exit at once stayed zombies. 100 connections closed together must
leave no zombie, and STATUS must come back to 0 active."""
from echod_test import (Daemon, bound, expect, expect_clean_exit, expect_echo, run,
                        wait_until)

N_CLIENTS = 100


def every_exited_child_is_reaped():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                clients = [daemon.connect() for _ in range(N_CLIENTS)]
                for i, client in enumerate(clients):
                        expect_echo(client, f'client {i}'.encode())
                busy = f'{N_CLIENTS} active, {N_CLIENTS} total connections'
                seen = daemon.notify.wait_for_status(busy, bound(5))
                expect(seen is not None, f'expected STATUS={busy!r}, saw '
                                         f'{daemon.notify.statuses()}')

                for client in clients:          # all children exit at about the same time
                        client.close()

                idle = f'0 active, {N_CLIENTS} total connections'
                seen = daemon.notify.wait_for_status(idle, bound(10), seen + 1)
                wait_until(lambda: not daemon.children(), bound(5))
                zombies = daemon.zombies()
                expect(not zombies, f'{len(zombies)} of {N_CLIENTS} children left as zombies, '
                                    f'e.g. {zombies[:5]}')
                expect(seen is not None, f'expected STATUS={idle!r}, the last was '
                                         f'{daemon.notify.statuses()[-1]!r}')
                expect(not daemon.children(), f'children left: {daemon.children()}')
                expect_clean_exit(daemon)


run(every_exited_child_is_reaped)
