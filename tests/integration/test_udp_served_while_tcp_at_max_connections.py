#!/usr/bin/env python3
"""--max-connections 2 with a TCP and a UDP socket: while two TCP clients hold every slot (a
third waits in the backlog), datagrams are still echoed; the cap stops accepting, not the
loop."""
import socket

from echod_test import (Daemon, datagram_socket, expect, expect_clean_exit,
                        expect_datagram_echo, expect_echo, recv_exactly, run)

N_DATAGRAMS = 20
HOLD_SECONDS = 0.5


def datagrams_echoed_at_the_connection_cap():
        with Daemon(['--listen', '127.0.0.1:{port}', '--listen-datagram', '127.0.0.1:{port}',
                     '--max-connections', '2']) as daemon:
                first, second = daemon.connect(), daemon.connect()
                expect_echo(first, b'first')
                expect_echo(second, b'second')
                third = daemon.connect()
                third.sendall(b'third')
                third.settimeout(HOLD_SECONDS)
                try:
                        early = third.recv(100)
                except socket.timeout:
                        early = None
                expect(early is None, f'the third client was served at the cap: {early!r}')

                with datagram_socket('127.0.0.1') as client:
                        for i in range(N_DATAGRAMS):
                                expect_datagram_echo(client, f'datagram {i}'.encode(),
                                                     ('127.0.0.1', daemon.port),
                                                     f'datagram {i} at the cap')
                expect(len(daemon.live_children()) == 2,
                       f'expected 2 children at the cap, saw {daemon.live_children()}')

                first.close()
                expect(recv_exactly(third, 5, what='the third client') == b'third',
                       'the third client got another echo')
                second.close()
                third.close()
                daemon.expect_status(f'0 active, 3 total connections, {N_DATAGRAMS} datagrams '
                                     'echoed, 0 dropped')
                expect_clean_exit(daemon)


run(datagrams_echoed_at_the_connection_cap)
