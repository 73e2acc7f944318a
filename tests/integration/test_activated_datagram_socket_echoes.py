#!/usr/bin/env python3
"""Socket-activated with a datagram socket (systemd-socket-activate --datagram): each datagram
comes back whole, as one datagram, and STATUS counts them."""
import random
import socket

from echod_test import Daemon, bound, expect, expect_clean_exit, run

N_DATAGRAMS = 3


def datagrams_come_back_whole():
        with Daemon(activate='127.0.0.1:{port}', socket_type='datagram') as daemon:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                        client.settimeout(bound(10))
                        # The first datagram is also what makes systemd-socket-activate start
                        # the daemon; it stays queued for it.
                        for i in range(N_DATAGRAMS):
                                payload = f'datagram {i}\0'.encode() + random.randbytes(1000)
                                client.sendto(payload, ('127.0.0.1', daemon.port))
                                echoed, source = client.recvfrom(65536)
                                expect(echoed == payload, f'datagram {i}: got {echoed[:20]!r}... '
                                                          f'({len(echoed)} bytes) back')
                                expect(source == ('127.0.0.1', daemon.port),
                                       f'datagram {i}: answered from {source}')

                status = (f'0 active, 0 total connections, {N_DATAGRAMS} datagrams echoed, '
                          '0 dropped')
                expect(daemon.notify.wait_for_status(status, bound(5)) is not None,
                       f'expected STATUS={status!r}, saw {daemon.notify.statuses()}')
                expect_clean_exit(daemon)


run(datagrams_come_back_whole)
