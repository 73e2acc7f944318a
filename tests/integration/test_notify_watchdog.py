#!/usr/bin/env python3
"""NOTIFY_SOCKET with WATCHDOG_USEC=200000 and WATCHDOG_PID=<the daemon>: WATCHDOG=1 keeps
coming, at least twice within 2 s."""
from echod_test import Daemon, bound, expect, expect_clean_exit, run


def watchdog_is_pinged():
        with Daemon(['--listen', '127.0.0.1:{port}'], watchdog_usec=200_000) as daemon:
                pinged = daemon.notify.wait_for_count('WATCHDOG', 2, bound(2))
                expect(pinged, f'expected 2 WATCHDOG=1 within {bound(2)} s of READY=1, got '
                               f'{daemon.notify.count("WATCHDOG")}')
                expect_clean_exit(daemon)


run(watchdog_is_pinged)
