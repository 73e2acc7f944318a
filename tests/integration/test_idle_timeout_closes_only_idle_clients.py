#!/usr/bin/env python3
"""--idle-timeout 1: a silent client is closed within a few seconds, while a client sending a
byte every 0.3 s for 2 s (twice the timeout) keeps its connection."""
import time

from echod_test import (Daemon, bound, expect, expect_clean_exit, expect_echo,
                        is_closed_by_peer, run, wait_until)


def idle_client_is_closed_and_active_one_is_not():
        with Daemon(['--listen', '127.0.0.1:{port}', '--idle-timeout', '1']) as daemon:
                idle, active = daemon.connect(), daemon.connect()
                expect_echo(idle, b'then silence')
                idle_since = time.monotonic()

                while time.monotonic() - idle_since < 2.0:
                        expect_echo(active, b'.', what='the active client')
                        time.sleep(0.3)

                closed = wait_until(lambda: is_closed_by_peer(idle),
                                    bound(5) - (time.monotonic() - idle_since))
                expect(closed, f'expected the idle client closed within {bound(5)} s of its '
                               'last byte, it is still open')
                expect(not is_closed_by_peer(active), 'the active client was closed')
                expect_echo(active, b'still here', what='the active client')
                active.close()
                idle.close()
                expect_clean_exit(daemon)


run(idle_client_is_closed_and_active_one_is_not)
