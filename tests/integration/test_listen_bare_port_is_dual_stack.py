#!/usr/bin/env python3
"""--listen PORT: one listener for both IPv4 and IPv6, so 127.0.0.1 and ::1 both get echoes."""
from echod_test import Daemon, connect, expect_clean_exit, expect_echo, run


def bare_port_serves_ipv4_and_ipv6():
        with Daemon(['--listen', '{port}']) as daemon:
                for host in ('127.0.0.1', '::1'):
                        with connect((host, daemon.port)) as client:
                                expect_echo(client, f'hello over {host}\n'.encode(),
                                            what=f'the echo over {host}')
                expect_clean_exit(daemon)


run(bare_port_serves_ipv4_and_ipv6)
