#!/usr/bin/env python3
"""Regression: the sketch retried a failed accept(2) at once, and the listener, still readable,
made it spin at 100% CPU for as long as the failure lasted. With accept failing (EMFILE, from
an RLIMIT_NOFILE lowered on the running daemon) and clients waiting, the daemon must stay
nearly idle, and serve them once the fault is gone."""
import time

from echod_test import (expect_backed_off, Daemon, bound, exhaust_fds, expect,
                        expect_clean_exit, recv_exactly, restore_fds, run)

FAULT_SECONDS = 3


def accept_error_does_not_spin():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                acceptor = daemon.acceptor()     # the process that accepts
                limits = exhaust_fds(acceptor)
                cpu_before = daemon.cpu_seconds()
                waiting = [daemon.connect() for _ in range(5)]
                for client in waiting:
                        client.sendall(b'waiting')

                time.sleep(FAULT_SECONDS)
                cpu_used = daemon.cpu_seconds() - cpu_before
                restore_fds(acceptor, limits)

                failures = daemon.log_lines('accept: Too many open files')
                expect(failures, f'expected accept to fail with EMFILE, the log says '
                                 f'{daemon.log_lines()}')
                expect_backed_off(failures, cpu_used, FAULT_SECONDS, 'accept')
                for i, client in enumerate(waiting):
                        expect(recv_exactly(client, 7, bound(10), f'client {i}') == b'waiting',
                               f'client {i} got another echo')
                        client.close()
                expect_clean_exit(daemon)


run(accept_error_does_not_spin)
