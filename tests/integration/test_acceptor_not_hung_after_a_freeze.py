#!/usr/bin/env python3
"""echod and its acceptor stopped together for 6 s (systemctl freeze, SIGSTOP while
debugging, a paused VM), then let go, echod first: the time neither ran is not the
acceptor's silence. It is not killed as hung (its PID stays, nothing is logged), and it
serves at once."""
import os
import signal
import time

from echod_test import Daemon, bound, expect, expect_echo, run


def a_frozen_service_wakes_whole():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                acceptor = daemon.acceptor()
                os.kill(daemon.pid, signal.SIGSTOP)
                os.kill(acceptor, signal.SIGSTOP)
                try:
                        time.sleep(6)
                finally:
                        os.kill(daemon.pid, signal.SIGCONT)
                        time.sleep(0.05)
                        try:
                                os.kill(acceptor, signal.SIGCONT)
                        except ProcessLookupError:
                                pass            # killed the moment echod woke: said below
                time.sleep(2)
                expect(daemon.acceptor(timeout=0) == acceptor,
                       f'the acceptor was replaced: {daemon.log_lines("not answered")}')
                expect(not daemon.log_lines('not answered'),
                       f'logged as hung: {daemon.log_lines("not answered")}')
                with daemon.connect(timeout=bound(5)) as sock:
                        expect_echo(sock, b'after the freeze')


run(a_frozen_service_wakes_whole)
