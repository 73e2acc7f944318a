#!/usr/bin/env python3
"""accept(2) failing with EMFILE: the daemon backs off instead of spinning, says so in a few
rate-limited lines, and serves every waiting client once descriptors are available again.
(The fault: RLIMIT_NOFILE lowered on the running daemon to its lowest free descriptor.)"""
import time

from echod_test import (expect_backed_off, Daemon, bound, exhaust_fds, expect,
                        expect_clean_exit, recv_exactly, restore_fds, run)

N_CLIENTS = 20
FAULT_SECONDS = 3


def accept_failure_backs_off_then_serves_everyone():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                acceptor = daemon.acceptor()     # the process that accepts
                limits = exhaust_fds(acceptor)
                cpu_before = daemon.cpu_seconds()

                clients = [daemon.connect() for _ in range(N_CLIENTS)]
                messages = [f'client {i}'.encode() for i in range(N_CLIENTS)]
                for client, message in zip(clients, messages):
                        client.sendall(message)
                time.sleep(FAULT_SECONDS)
                cpu_used = daemon.cpu_seconds() - cpu_before
                failures = daemon.log_lines('accept: Too many open files')
                restore_fds(acceptor, limits)

                expect(failures, f'expected accept to fail with EMFILE, the log says '
                                 f'{daemon.log_lines()}')
                expect_backed_off(failures, cpu_used, FAULT_SECONDS, 'accept')
                expect('pausing' in failures[0], f'expected the log to say it pauses: '
                                                 f'{failures[0]!r}')
                for i, (client, message) in enumerate(zip(clients, messages)):
                        echoed = recv_exactly(client, len(message), bound(10), f'client {i}')
                        expect(echoed == message, f'client {i} got {echoed!r}')
                        client.close()
                expect_clean_exit(daemon)


run(accept_failure_backs_off_then_serves_everyone)
