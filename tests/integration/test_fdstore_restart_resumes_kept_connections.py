#!/usr/bin/env python3
"""A restart as systemd runs it, with the test standing in for PID 1: echod gets a listening
socket (LISTEN_FDS); its connections go into the notify socket's fd store, old ones while it
runs, young ones at the SIGTERM, each confirmed by a barrier before its child is told; the
children hand over and echod exits 0; a second echod gets the listening socket and every
stored connection (LISTEN_FDNAMES), resumes them, and every client's bytes come back
exactly, those sent during the restart included. Then each client closes, and the second
echod removes each connection from the store."""
import signal
import time

from echod_test import (Daemon, bound, expect, expect_echo, expect_eof, listening_socket,
                        recv_exactly, run, wait_until)

N_OLD, N_YOUNG = 6, 4


def kept_connections_survive_a_restart():
        listener = listening_socket()
        with Daemon(passed=[('echo.socket', listener)], fd_store=64) as first:
                old = [first.connect(timeout=bound(5)) for _ in range(N_OLD)]
                for i, sock in enumerate(old):
                        expect_echo(sock, b'old %d;' % i)
                expect(wait_until(lambda: len(first.notify.held()) == N_OLD, bound(2)),
                       f'{len(first.notify.held())} of {N_OLD} old connections stored')
                young = [first.connect(timeout=bound(5)) for _ in range(N_YOUNG)]
                for i, sock in enumerate(young):
                        expect_echo(sock, b'young %d;' % i)
                first.announce_stop()    # a restart, as ExecStop= says
                first.signal(signal.SIGTERM)
                status = first.wait_exit(bound(5))
                expect(status == 0, f'the first echod exited {status}')
                kept = first.notify.held()
                expect(len(kept) == N_OLD + N_YOUNG,
                       f'{len(kept)} of {N_OLD + N_YOUNG} connections kept in the store')
                clients = old + young
                for i, sock in enumerate(clients):
                        sock.sendall(b'during %d;' % i)
                time.sleep(0.2)
                with Daemon(passed=[('echo.socket', listener)] + kept, fd_store=64) as second:
                        for i, sock in enumerate(clients):
                                got = recv_exactly(sock, len(b'during %d;' % i), timeout=bound(5),
                                                   what='the echo of what was sent meanwhile')
                                expect(got == b'during %d;' % i, f'client {i}: {got!r}')
                                expect_echo(sock, b'after %d;' % i)
                                sock.shutdown(1)
                                expect_eof(sock, what=f'client {i}\'s connection')
                        expect(wait_until(lambda: not second.notify.held(), bound(3)),
                               f'{len(second.notify.held())} connections left in the store')
                        removed = second.notify.count('FDSTOREREMOVE')
                        expect(removed == len(clients),
                               f'{removed} FDSTOREREMOVE=1 for {len(clients)} connections')
        listener.close()


run(kept_connections_survive_a_restart)
