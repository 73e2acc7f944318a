#!/usr/bin/env python3
"""EMFILE under a burst: with RLIMIT_NOFILE of the running daemon lowered to its lowest free
descriptor, 200 clients connect at once and send while well-behaved clients keep coming.
accept(2) fails; the daemon backs off (at most 10 tries a second, little CPU) and says so
about once a second; once the limit is restored, every client gets its bytes back exactly."""
import time

from echod_test import (expect_backed_off, WRAPPER, Bystanders, Daemon, bound, exhaust_fds,
                        expect, expect_clean_exit, expect_still_serving, garbage, recv_exactly,
                        restore_fds, run)

N_BURST = 20 if WRAPPER else 200
FAULT_SECONDS = 3


def burst_waits_out_emfile():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                acceptor = daemon.acceptor()     # the process that accepts
                limits = exhaust_fds(acceptor)
                cpu_before = daemon.cpu_seconds()
                with Bystanders(daemon.address) as bystanders:
                        burst = [daemon.connect() for _ in range(N_BURST)]
                        sent = [garbage(1000 + i) for i in range(N_BURST)]
                        for client, data in zip(burst, sent):
                                client.sendall(data)
                        time.sleep(FAULT_SECONDS)
                        cpu_used = daemon.cpu_seconds() - cpu_before
                        failures = daemon.log_lines('accept: Too many open files')
                        restore_fds(acceptor, limits)

                        expect(failures, f'expected accept to fail with EMFILE, the log says '
                                         f'{daemon.log_lines()}')
                        expect_backed_off(failures, cpu_used, FAULT_SECONDS, 'accept')
                        for i, (client, data) in enumerate(zip(burst, sent)):
                                echoed = recv_exactly(client, len(data), bound(20),
                                                      f'burst client {i}')
                                expect(echoed == data, f'burst client {i} got other bytes back')
                                client.close()
                bystanders.check()
                expect_still_serving(daemon, 'after EMFILE')
                daemon.expect_status(f'0 active, {N_BURST + bystanders.count() + 1} total '
                                     'connections', timeout=bound(10))
                expect_clean_exit(daemon)


run(burst_waits_out_emfile)
