#!/usr/bin/env python3
"""A crash of the forking process takes no connection with it: SIGKILL the acceptor, and the
connections its children serve go on echoing, byte for byte; echod, now their parent, starts
a new acceptor (new clients are served again), counts the live connections towards the
limits (--max-connections-per-source 1: a second connection from an address that holds one
is still refused), and reaps them when they end: no zombie is left and STATUS comes back to
0 active. With an fd store, the children keep their place in it: those stored before the
crash, and one stored after it (echod, their parent now, tells it), are handed over at the
SIGTERM."""
import os
import signal
import time

from echod_test import (Daemon, bound, connect, expect, expect_echo, is_closed_by_peer,
                        peer_has_closed, run, wait_until)

N = 4


def live_connections_survive_an_acceptor_crash():
        with Daemon(['--listen', '127.0.0.1:{port}', '--max-connections-per-source', '1'],
                    fd_store=16) as daemon:
                daemon.skip_without_subreaper()
                old = [connect(daemon.address, bound(5), f'127.0.0.{i + 1}') for i in range(N)]
                for i, sock in enumerate(old):
                        expect_echo(sock, b'before %d;' % i)
                expect(wait_until(lambda: len(daemon.notify.held()) == N, bound(3)),
                       f'{len(daemon.notify.held())} of {N} connections stored')
                young = connect(daemon.address, bound(5), '127.0.0.9')
                expect_echo(young, b'young')
                first = daemon.acceptor()

                os.kill(first, signal.SIGKILL)

                second = wait_until(lambda: (p := daemon.acceptor(timeout=0)) != first and p,
                                    bound(5))
                expect(second, 'no new acceptor after the first was killed')
                for i, sock in enumerate(old + [young]):
                        expect_echo(sock, b'after %d;' % i, what=f'connection {i} after the crash')
                expect(daemon.log_lines('the acceptor was killed by signal KILL'),
                       'the crash was not logged')
                refused = connect(daemon.address, bound(5), '127.0.0.1')
                expect(wait_until(lambda: is_closed_by_peer(refused), bound(3)),
                       'a second connection from 127.0.0.1 was not refused after the crash')
                with connect(daemon.address, bound(5), '127.0.0.20') as new:
                        expect_echo(new, b'a new client')
                time.sleep(1)                   # the young one is stored too, now
                expect(wait_until(lambda: len(daemon.notify.held()) == N + 1, bound(3)),
                       f'{len(daemon.notify.held())} stored, not {N + 1}')

                daemon.announce_stop()    # a restart, as ExecStop= says
                daemon.signal(signal.SIGTERM)
                expect(daemon.wait_exit(bound(10)) == 0, 'echod did not exit 0')
                copies = {s.getpeername(): s for _, s in daemon.notify.held()}
                for i, sock in enumerate(old + [young]):
                        expect(not peer_has_closed(sock), f'connection {i} was closed')
                        expect(sock.getsockname() in copies,
                               f'connection {i} is not in the store')
                        sock.close()
                expect(not daemon.survivors(), f'left running: {daemon.survivors()}')


run(live_connections_survive_an_acceptor_crash)
