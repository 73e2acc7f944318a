#!/usr/bin/env python3
"""fork(2) failing: the daemon runs as an unprivileged user (nobody, when the test is root)
and its RLIMIT_NPROC is lowered to 0 while it runs, so every fork fails with EAGAIN. It logs
the failure about once a second, keeps the accepted connection waiting and retries after a
back-off (at most 10 tries a second, little CPU), while the connections it already serves go
on; once the limit is lifted, every waiting client gets its bytes back exactly."""
import os
import pwd
import resource
import time

from echod_test import (expect_backed_off, Daemon, bound, expect, expect_clean_exit, expect_echo,
                        expect_still_serving, garbage, recv_exactly, run, set_limit_as_owner,
                        skip)

N_WAITING = 20
FAULT_SECONDS = 3


def unprivileged_user():
        """RLIMIT_NPROC does not bind root: run the daemon as nobody, or as ourselves."""
        if os.geteuid() != 0:
                return None
        try:
                return pwd.getpwnam('nobody')
        except KeyError:
                skip('running as root, and there is no user "nobody" to run the daemon as')


def fork_failure_backs_off_and_loses_nothing():
        user = unprivileged_user()
        with Daemon(['--listen', '127.0.0.1:{port}'], user=user) as daemon:
                served = [daemon.connect() for _ in range(2)]
                for i, client in enumerate(served):
                        expect_echo(client, garbage(2000), what=f'served client {i}')

                acceptor = daemon.acceptor()     # the process that forks
                old = set_limit_as_owner(acceptor, resource.RLIMIT_NPROC, 0, user)
                cpu_before = daemon.cpu_seconds()
                waiting = [daemon.connect() for _ in range(N_WAITING)]
                sent = [garbage(1000 + i) for i in range(N_WAITING)]
                for client, data in zip(waiting, sent):
                        client.sendall(data)
                fault_end = time.monotonic() + FAULT_SECONDS
                while time.monotonic() < fault_end:
                        for i, client in enumerate(served):
                                expect_echo(client, garbage(3000), what=f'served client {i} '
                                                                        'during the fault')
                        time.sleep(0.2)
                cpu_used = daemon.cpu_seconds() - cpu_before
                failures = daemon.log_lines('fork: ')
                children = daemon.live_children()
                set_limit_as_owner(acceptor, resource.RLIMIT_NPROC, old, user)

                expect(failures and 'connection kept waiting' in failures[0],
                       f'expected the fork failure logged, the log says {daemon.log_lines()}')
                expect(len(children) == 2, f'expected only the 2 children from before the '
                                           f'fault, saw {children}')
                expect_backed_off(failures, cpu_used, FAULT_SECONDS, 'fork')

                for i, (client, data) in enumerate(zip(waiting, sent)):
                        echoed = recv_exactly(client, len(data), bound(10), f'waiting client {i}')
                        expect(echoed == data, f'waiting client {i} got other bytes back')
                        client.close()
                for client in served:
                        client.close()
                expect_still_serving(daemon, 'after fork failures')
                daemon.expect_status(f'0 active, {N_WAITING + 3} total connections')
                expect_clean_exit(daemon)


run(fork_failure_backs_off_and_loses_nothing)
