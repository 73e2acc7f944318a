#!/usr/bin/env python3
"""At a restart, a connection PID 1 has not confirmed by the deadline (half the shutdown
timeout) is not handed over: with PID 1 stalled throughout (its notify socket not read), 4
young connections and a SIGTERM, echod says so once, each child finishes its connection as
without a store (the client gets its echo, then the end of the stream), and echod exits 0.
(What echod sent before PID 1 stalled still reaches PID 1 later: connections ended by
then, which the next instance finds ended.)"""
import signal

from echod_test import Daemon, bound, expect, expect_echo, run

N = 4
SHUTDOWN_TIMEOUT = 2    # s: the deadline is half of it


def unconfirmed_connections_end_here():
        with Daemon(['--listen', '127.0.0.1:{port}', '--shutdown-timeout',
                     str(SHUTDOWN_TIMEOUT)], fd_store=64) as daemon:
                clients = [daemon.connect(timeout=bound(5)) for _ in range(N)]
                for i, sock in enumerate(clients):
                        expect_echo(sock, b'before %d;' % i)
                daemon.notify.stall()
                daemon.announce_stop()    # a restart, as ExecStop= says
                daemon.signal(signal.SIGTERM)
                for i, sock in enumerate(clients):
                        sock.sendall(b'after the SIGTERM %d;' % i)
                for i, sock in enumerate(clients):
                        sock.settimeout(bound(SHUTDOWN_TIMEOUT + 3))
                        got = bytearray()
                        while True:
                                chunk = sock.recv(4096)
                                if not chunk:
                                        break
                                got += chunk
                        expect(bytes(got) == b'after the SIGTERM %d;' % i,
                               f'client {i}: got {bytes(got)!r} then the end, not its echo')
                expect(daemon.wait_exit(bound(SHUTDOWN_TIMEOUT + 5)) == 0,
                       'echod did not exit 0')
                said = daemon.log_lines('has not confirmed the fd store')
                expect(len(said) == 1, f'echod said {len(said)} times that PID 1 did not '
                                       f'confirm: {said}')


run(unconfirmed_connections_end_here)
