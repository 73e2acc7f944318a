#!/usr/bin/env python3
"""--listen-datagram on 127.0.0.1 and [::1]: each datagram comes back whole, as one datagram,
from the address it was sent to, from an empty one up to the largest UDP payload of each
family: 65507 bytes over IPv4, 65527 over IPv6 (without jumbograms). STATUS counts them."""
from echod_test import (Daemon, datagram_socket, expect_clean_exit, expect_datagram_echo,
                        garbage, run)

SIZES = {'127.0.0.1': (0, 1, 1472, 9000, 65507), '::1': (0, 1, 1452, 9000, 65527)}


def datagrams_come_back_whole():
        with Daemon(['--listen-datagram', '127.0.0.1:{port}',
                     '--listen-datagram', '[::1]:{port}']) as daemon:
                n = 0
                for host, sizes in SIZES.items():
                        with datagram_socket(host) as client:
                                for size in sizes:
                                        expect_datagram_echo(client, garbage(size),
                                                             (host, daemon.port),
                                                             f'a {size}-byte datagram over {host}')
                                        n += 1

                daemon.expect_status(f'0 active, 0 total connections, {n} datagrams echoed, '
                                     '0 dropped')
                expect_clean_exit(daemon)


run(datagrams_come_back_whole)
