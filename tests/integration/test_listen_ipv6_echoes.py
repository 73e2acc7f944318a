#!/usr/bin/env python3
"""--listen [::1]:PORT: echoes every byte over IPv6 loopback, and listens there only."""
from echod_test import Daemon, connect, expect, expect_clean_exit, expect_echo, run


def ipv6_listener_echoes_every_byte():
        with Daemon(['--listen', '[::1]:{port}']) as daemon:
                with daemon.connect() as client:
                        expect(daemon.address == ('::1', daemon.port),
                               f'expected to connect to [::1]:{daemon.port}')
                        expect_echo(client, b'ping\0pong\r\n' + bytes(range(256)))
                try:
                        connect(('127.0.0.1', daemon.port)).close()
                        refused = False
                except ConnectionRefusedError:
                        refused = True
                expect(refused, f'expected an IPv6-only listener, but 127.0.0.1:{daemon.port} '
                                'accepted a connection')
                expect_clean_exit(daemon)


run(ipv6_listener_echoes_every_byte)
