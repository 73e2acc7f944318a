#!/usr/bin/env python3
"""At a restart echod stores the connections too young to be stored yet, and tells their
children to stop only once PID 1 has confirmed them (the barrier), or at the confirmation
deadline: a child told to stop before its connection is certainly stored would finish it
instead of handing it over. With PID 1 stalled (its notify socket not read), 4 young
connections and a SIGTERM: a second later (well past a stopped child's 0.2 s of grace)
every connection still echoes, its child not told to stop; once PID 1 reads again, the
connections are stored and handed over, each open for the next instance."""
import signal
import time

from echod_test import (Daemon, bound, expect, expect_echo, peer_has_closed, run,
                        wait_until)

N = 4


def children_wait_for_the_confirmation():
        with Daemon(['--listen', '127.0.0.1:{port}', '--shutdown-timeout', '10'],
                    fd_store=64) as daemon:
                clients = [daemon.connect(timeout=bound(5)) for _ in range(N)]
                for i, sock in enumerate(clients):
                        expect_echo(sock, b'before %d;' % i)
                daemon.notify.stall()
                daemon.announce_stop()    # a restart, as ExecStop= says
                daemon.signal(signal.SIGTERM)
                time.sleep(1)
                for i, sock in enumerate(clients):
                        expect_echo(sock, b'while PID 1 is busy %d;' % i, timeout=bound(2),
                                    what=f'client {i}, its store not confirmed yet')
                daemon.notify.resume()
                expect(daemon.wait_exit(bound(5)) == 0, 'echod did not exit 0')
                held = daemon.notify.held()
                expect(len(held) == N, f'{len(held)} of {N} connections stored')
                for i, sock in enumerate(clients):
                        expect(not peer_has_closed(sock), f'client {i}: its connection was '
                                                          'closed, not handed over')


run(children_wait_for_the_confirmation)
