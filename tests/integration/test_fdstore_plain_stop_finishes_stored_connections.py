#!/usr/bin/env python3
"""Only a restart keeps connections: at a plain stop systemd empties the fd store once the
service is gone, so a connection handed over would be reset and the bytes not echoed yet
lost. With 4 connections stored and confirmed, each client sends 48 KiB without reading,
then the SIGTERM comes, once as `systemctl stop` announces it (ExecStop= writes JOB=stop)
and once unannounced (kill, systemctl kill: taken for a plain stop). Every client gets
all of its bytes back, then the end of the stream, no reset; echod exits 0 and says that
no connection is kept."""
import os
import signal
import time

from echod_test import (Daemon, bound, expect, expect_echo, expect_eof, recv_exactly, run,
                        wait_until)

N = 4
PAYLOAD = 48 * 1024


def stop_finishes_every_connection(job):
        with Daemon(['--listen', '127.0.0.1:{port}'], fd_store=16) as daemon:
                clients = [daemon.connect(timeout=bound(5)) for _ in range(N)]
                for i, sock in enumerate(clients):
                        expect_echo(sock, b'hello %d' % i)
                expect(wait_until(lambda: len(daemon.notify.held()) == N, bound(3)),
                       f'{len(daemon.notify.held())} of {N} connections stored')
                time.sleep(0.5)         # confirmed, and each child told
                payloads = [os.urandom(PAYLOAD) for _ in clients]
                for sock, payload in zip(clients, payloads):
                        sock.sendall(payload)

                if job:
                        daemon.announce_stop(job)
                daemon.signal(signal.SIGTERM)
                for i, (sock, payload) in enumerate(zip(clients, payloads)):
                        what = f'client {i} ({job or "unannounced"} stop)'
                        got = recv_exactly(sock, PAYLOAD, timeout=bound(5), what=what)
                        expect(got == payload, f'{what}: wrong echo')
                        expect_eof(sock, what=what)
                expect(daemon.wait_exit(bound(5)) == 0, 'echod did not exit 0')
                expect(daemon.log_lines('no restart follows'),
                       'the stop did not say that no connection is kept')


def plain_stops_finish_stored_connections():
        stop_finishes_every_connection('stop')
        stop_finishes_every_connection(None)


run(plain_stops_finish_stored_connections)
