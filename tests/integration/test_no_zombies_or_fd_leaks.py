#!/usr/bin/env python3
"""After 300 connections the daemon is back where it started: no child left, no zombie, and
no file descriptor open that was not open right after start-up."""
from echod_test import (Daemon, bound, expect, expect_clean_exit, expect_echo, open_fds, run,
                        wait_until)

N_WAVES = 10
WAVE_SIZE = 30


def serve_wave(daemon, wave):
        clients = [daemon.connect() for _ in range(WAVE_SIZE)]
        try:
                for i, client in enumerate(clients):
                        expect_echo(client, f'wave {wave} client {i}'.encode())
        finally:
                for client in clients:
                        client.close()


def stable_fds(pid):
        """The descriptors open in each of a few looks: sd_notify()'s socket, open only while
        a message goes out, is not part of the baseline. (Under valgrind, valgrind's own
        descriptors are, which is why this compares sets, not numbers.)"""
        looks = [open_fds(pid) for _ in range(20)]
        return {fd: target for fd, target in looks[0].items()
                if all(look.get(fd) == target for look in looks)}


def nothing_is_left_after_many_connections():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                baseline = stable_fds(daemon.pid)

                for wave in range(N_WAVES):
                        serve_wave(daemon, wave)

                total = N_WAVES * WAVE_SIZE
                status = f'0 active, {total} total connections'
                expect(daemon.notify.wait_for_status(status, bound(10)) is not None,
                       f'expected STATUS={status!r}, saw {daemon.notify.statuses()[-3:]}')

                def new_fds():
                        return {fd: target for fd, target in open_fds(daemon.pid).items()
                                if baseline.get(fd) != target}
                wait_until(lambda: not daemon.children() and not new_fds(), bound(5))
                expect(not daemon.zombies(), f'zombies left: {daemon.zombies()}')
                expect(not daemon.children(), f'children left: {daemon.children()}')
                expect(not new_fds(), f'descriptors open that were not after start-up: '
                                      f'{new_fds()}')
                expect_clean_exit(daemon)


run(nothing_is_left_after_many_connections)
