#!/usr/bin/env python3
"""The children's parent, the acceptor, SIGSTOPped, then SIGCONTed (within the 5 s after
which echod would kill it as hung), with --max-connections 4: while it is stopped, its four
children exit (their SIGCHLDs merge into one) and ten new clients connect and send, waiting
in the backlog. After SIGCONT every exited child is reaped and every queued client is served,
in turn, with its bytes exactly; no zombie is left and STATUS is back at 0 active."""
import contextlib
import os
import signal
import socket
import time

from echod_test import (Daemon, bound, expect, expect_clean_exit, expect_echo,
                        expect_still_serving, garbage, proc_stat, recv_exactly, run, wait_until)

N_HELD = 4
N_QUEUED = 10
STOPPED_SECONDS = 0.5
MAX_CPU_SECONDS = 1.0


def queued_clients_served_after_sigcont():
        with Daemon(['--listen', '127.0.0.1:{port}', '--max-connections', str(N_HELD)]) \
                        as daemon:
                held = [daemon.connect() for _ in range(N_HELD)]
                for i, client in enumerate(held):
                        expect_echo(client, garbage(1000), what=f'held client {i}')

                acceptor = daemon.acceptor()
                os.kill(acceptor, signal.SIGSTOP)
                expect(wait_until(lambda: proc_stat(acceptor)['state'] == 'T', bound(5)),
                       f'the acceptor did not stop: {proc_stat(acceptor)}')
                for client in held:
                        client.close()
                expect(wait_until(lambda: len(daemon.zombies()) == N_HELD, bound(5)),
                       f'expected the {N_HELD} children to exit while the parent is stopped, '
                       f'{len(daemon.zombies())} did')
                queued = [daemon.connect() for _ in range(N_QUEUED)]
                sent = [garbage(2000 + i) for i in range(N_QUEUED)]
                for client, data in zip(queued, sent):
                        client.sendall(data)
                time.sleep(STOPPED_SECONDS)
                queued[0].settimeout(0.1)
                try:
                        early = queued[0].recv(100)
                except socket.timeout:
                        early = None
                expect(early is None, f'a queued client was answered by a stopped acceptor: '
                                      f'{early!r}')

                cpu_before = daemon.cpu_seconds()
                with contextlib.suppress(ProcessLookupError):   # killed as hung: slow run
                        os.kill(acceptor, signal.SIGCONT)
                for i, (client, data) in enumerate(zip(queued, sent)):
                        echoed = recv_exactly(client, len(data), bound(10), f'queued client {i}')
                        expect(echoed == data, f'queued client {i} got other bytes back')
                        client.close()      # its slot goes to the next in the backlog

                daemon.expect_status(f'0 active, {N_HELD + N_QUEUED} total connections',
                                     timeout=bound(10))
                expect(wait_until(lambda: not daemon.children(), bound(5)),
                       f'children left: {daemon.children()}, zombies: {daemon.zombies()}')
                cpu_used = daemon.cpu_seconds() - cpu_before
                expect(cpu_used < MAX_CPU_SECONDS,
                       f'the daemon used {cpu_used:.2f} s of CPU after SIGCONT')
                expect_still_serving(daemon, 'after SIGSTOP and SIGCONT')
                expect_clean_exit(daemon)


run(queued_clients_served_after_sigcont)
