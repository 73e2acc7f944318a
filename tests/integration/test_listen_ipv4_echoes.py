#!/usr/bin/env python3
"""--listen 127.0.0.1:PORT: echoes every byte over IPv4 loopback, and listens there only."""
from echod_test import Daemon, connect, expect, expect_clean_exit, expect_echo, run


def ipv4_listener_echoes_every_byte():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                with daemon.connect() as client:
                        expect_echo(client, b'ping\0pong\r\n' + bytes(range(256)))
                try:
                        connect(('::1', daemon.port)).close()
                        refused = False
                except ConnectionRefusedError:
                        refused = True
                expect(refused, f'expected an IPv4-only listener, but [::1]:{daemon.port} '
                                'accepted a connection')
                expect_clean_exit(daemon)


run(ipv4_listener_echoes_every_byte)
