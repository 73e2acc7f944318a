#!/usr/bin/env python3
"""PID 1 gone for a moment (its notify socket closed: a re-execution, say): the stores echod
tries meanwhile fail. echod keeps the connections as they were, logs why (at most once a
second), and stores them once PID 1 is back; their children are told only then, and hand
over at the SIGTERM. (echod used to drop such connections from the store for good: they
ended at the next restart.)"""
import signal
import time

from echod_test import (Daemon, bound, expect, expect_echo, peer_has_closed, recv_exactly,
                        run, wait_until)

N = 5


def failed_stores_are_sent_again():
        with Daemon(['--listen', '127.0.0.1:{port}'], fd_store=16) as daemon:
                daemon.notify.go_away()
                clients = [daemon.connect(timeout=bound(5)) for _ in range(N)]
                for i, sock in enumerate(clients):
                        expect_echo(sock, b'hello %d' % i)
                time.sleep(1)                   # past the age at which they are stored
                logged = daemon.log_lines('fd store')
                expect(logged, 'nothing logged about the stores that failed')
                daemon.notify.come_back()

                expect(wait_until(lambda: len(daemon.notify.held()) == N, bound(3)),
                       f'{len(daemon.notify.held())} of {N} stored once PID 1 was back')
                daemon.announce_stop()    # a restart, as ExecStop= says
                daemon.signal(signal.SIGTERM)
                expect(daemon.wait_exit(bound(5)) == 0, 'echod did not exit 0')
                copies = {sock.getpeername()[1]: sock for _, sock in daemon.notify.held()}
                for i, sock in enumerate(clients):
                        expect(not peer_has_closed(sock), f'client {i}: connection closed')
                        sock.sendall(b'next %d' % i)
                        copy = copies.get(sock.getsockname()[1])
                        expect(copy is not None, f'client {i}: not in the store')
                        got = recv_exactly(copy, len(b'next %d' % i), timeout=bound(5),
                                           what='bytes for the next instance')
                        expect(got == b'next %d' % i, f'client {i}: {got!r}')


run(failed_stores_are_sent_again)
