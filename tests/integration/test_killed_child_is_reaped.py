#!/usr/bin/env python3
"""A child killed mid-connection (SIGKILL) is reaped: no zombie, the active count drops in
STATUS, the kill is logged, and the daemon goes on serving."""
import os
import signal

from echod_test import (Daemon, bound, expect, expect_clean_exit, expect_echo,
                        is_closed_by_peer, run, wait_until)


def expect_status(daemon, status, start=0):
        seen = daemon.notify.wait_for_status(status, bound(5), start)
        expect(seen is not None, f'expected STATUS={status!r}, saw {daemon.notify.statuses()}')
        return seen


def killed_child_is_reaped_and_forgotten():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                victim = daemon.connect()
                expect_echo(victim, b'about to lose my child')
                [victim_child] = daemon.live_children()
                survivor = daemon.connect()
                expect_echo(survivor, b'staying')
                seen = expect_status(daemon, '2 active, 2 total connections')

                os.kill(victim_child, signal.SIGKILL)

                seen = expect_status(daemon, '1 active, 2 total connections', seen + 1)
                expect(not daemon.zombies(), f'zombies left: {daemon.zombies()}')
                expect(victim_child not in daemon.children(),
                       f'the killed child {victim_child} is still a child of the daemon')
                expect(wait_until(lambda: is_closed_by_peer(victim), bound(5)),
                       'the killed child\'s client was not closed')
                expect(daemon.log_lines(f'child {victim_child} killed by signal KILL'),
                       f'expected the kill to be logged, saw {daemon.log_lines()}')

                expect_echo(survivor, b'still served')
                with daemon.connect() as newcomer:
                        expect_echo(newcomer, b'new client served')
                survivor.close()
                victim.close()
                expect_clean_exit(daemon)


run(killed_child_is_reaped_and_forgotten)
