#!/usr/bin/env python3
"""--max-connections 2: two clients are served; a third is accepted by the kernel's backlog,
never refused, and gets its echo as soon as one of the first two leaves."""
import socket

from echod_test import (Daemon, bound, expect, expect_clean_exit, expect_echo, recv_exactly,
                        run)

# How long the third client must see nothing while the first two hold their slots.
HOLD_SECONDS = 1.0


def third_client_waits_for_a_free_slot():
        with Daemon(['--listen', '127.0.0.1:{port}', '--max-connections', '2']) as daemon:
                first, second = daemon.connect(), daemon.connect()
                expect_echo(first, b'first')
                expect_echo(second, b'second')

                third = daemon.connect()        # would raise ConnectionRefusedError if refused
                third.sendall(b'third')
                third.settimeout(HOLD_SECONDS)
                try:
                        early = third.recv(100)
                except socket.timeout:
                        early = None
                expect(early is None, f'expected no echo for the third client while two are '
                                      f'served, got {early!r}')
                expect(len(daemon.live_children()) == 2,
                       f'expected 2 children at the cap, saw {daemon.live_children()}')

                first.close()
                echoed = recv_exactly(third, len(b'third'), bound(5), 'the third client')
                expect(echoed == b'third', f'the third client got {echoed!r}')
                expect_echo(second, b'second still served')
                expect(daemon.log_lines('the limit'),
                       f'expected a log line about the limit, saw {daemon.log_lines()}')
                second.close()
                third.close()
                expect_clean_exit(daemon)


run(third_client_waits_for_a_free_slot)
