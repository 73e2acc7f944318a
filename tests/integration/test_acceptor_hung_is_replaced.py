#!/usr/bin/env python3
"""An acceptor that hangs (here stopped with SIGSTOP) serves no new client: echod, which asks
it every second whether it is alive, kills it after 5 s of silence and starts a new one. The
connections its children serve echo all along, and the clients that queued meanwhile are
served by the new acceptor. The watchdog tells systemd that connections are served only
while an acceptor answers: WATCHDOG=1 pauses during the hang."""
import os
import signal
import time

from echod_test import Daemon, bound, expect, expect_echo, recv_exactly, run, wait_until

WATCHDOG_USEC = 2_000_000       # echod pings every second


def hung_acceptor_is_replaced():
        with Daemon(['--listen', '127.0.0.1:{port}'], watchdog_usec=WATCHDOG_USEC) as daemon:
                daemon.skip_without_subreaper()
                live = daemon.connect(timeout=bound(5))
                expect_echo(live, b'before')
                first = daemon.acceptor()
                os.kill(first, signal.SIGSTOP)
                stopped_at = time.monotonic()
                queued = daemon.connect(timeout=bound(5))
                queued.sendall(b'queued')
                for i in range(4):      # the live connection's child is not stopped
                        expect_echo(live, b'during %d' % i)
                        time.sleep(0.5)

                second = wait_until(lambda: (p := daemon.acceptor(timeout=0)) != first and p,
                                    bound(10))
                expect(second, 'the stopped acceptor was not replaced')
                replaced_at = time.monotonic()
                expect(daemon.log_lines('has not answered'), 'the hang was not logged')
                got = recv_exactly(queued, len(b'queued'), timeout=bound(5),
                                   what='the client that queued during the hang')
                expect(got == b'queued', f'the queued client got {got!r}')
                expect_echo(live, b'after')
                expect(wait_until(lambda: max(daemon.notify.watchdog_times(), default=0) >
                                  replaced_at, bound(5)), 'no WATCHDOG=1 after the new acceptor')
                # One may still come a period after the stop (an answer came just
                # before it); then none until the new acceptor answers.
                points = [stopped_at] + [t for t in daemon.notify.watchdog_times()
                                         if t > stopped_at]
                silent = max(b - a for a, b in zip(points, points[1:]))
                expect(silent >= 3, f'WATCHDOG=1 went on during the hang: its longest pause '
                                    f'was {silent:.1f} s')
                live.close()
                queued.close()


run(hung_acceptor_is_replaced)
