#!/usr/bin/env python3
"""accept(2) failing with EMFILE: the daemon backs off instead of spinning, says so in a few
rate-limited lines, and serves every waiting client once descriptors are available again.
(The fault: RLIMIT_NOFILE lowered on the running daemon to its lowest free descriptor.)"""
import time

from echod_test import (Daemon, attempts_logged, bound, exhaust_fds, expect,
                        expect_clean_exit, recv_exactly, restore_fds, run)

N_CLIENTS = 20
FAULT_SECONDS = 3
MAX_CPU_SECONDS = 1.0
# The back-off starts at 100 ms: at most 10 tries a second, however busy the machine.
MAX_ATTEMPTS = 10 * FAULT_SECONDS + 1


def accept_failure_backs_off_then_serves_everyone():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                limits = exhaust_fds(daemon.pid)
                cpu_before = daemon.cpu_seconds()

                clients = [daemon.connect() for _ in range(N_CLIENTS)]
                messages = [f'client {i}'.encode() for i in range(N_CLIENTS)]
                for client, message in zip(clients, messages):
                        client.sendall(message)
                time.sleep(FAULT_SECONDS)
                cpu_used = daemon.cpu_seconds() - cpu_before
                failures = daemon.log_lines('accept: Too many open files')
                restore_fds(daemon.pid, limits)

                expect(failures, f'expected accept to fail with EMFILE, the log says '
                                 f'{daemon.log_lines()}')
                expect(cpu_used < MAX_CPU_SECONDS,
                       f'expected under {MAX_CPU_SECONDS} s of CPU in {FAULT_SECONDS} s of '
                       f'accept failures, the daemon used {cpu_used:.2f} s')
                expect(attempts_logged(failures) <= MAX_ATTEMPTS,
                       f'expected at most {MAX_ATTEMPTS} tries in {FAULT_SECONDS} s, the log '
                       f'counts {attempts_logged(failures)}: {failures}')
                expect(len(failures) <= FAULT_SECONDS + 2,
                       f'expected the accept failure logged about once a second, '
                       f'got {len(failures)} lines: {failures}')
                expect('pausing' in failures[0], f'expected the log to say it pauses: '
                                                 f'{failures[0]!r}')
                for i, (client, message) in enumerate(zip(clients, messages)):
                        echoed = recv_exactly(client, len(message), bound(10), f'client {i}')
                        expect(echoed == message, f'client {i} got {echoed!r}')
                        client.close()
                expect_clean_exit(daemon)


run(accept_failure_backs_off_then_serves_everyone)
