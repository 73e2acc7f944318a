#!/usr/bin/env python3
"""Regression: the sketch closed the listening socket after its first fork, so only the first
client was ever served. Clients in sequence, and a second (and third) client while the first
is still connected, must all be echoed."""
from echod_test import Daemon, expect_clean_exit, expect_echo, run

N_SEQUENTIAL = 5


def listener_survives_first_fork():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                for i in range(N_SEQUENTIAL):
                        with daemon.connect() as client:
                                expect_echo(client, f'sequential client {i}'.encode(),
                                            what=f'sequential client {i}')

                with daemon.connect() as first:
                        expect_echo(first, b'first, staying connected', what='the first client')
                        with daemon.connect() as second:
                                expect_echo(second, b'second, while the first is connected',
                                            what='the second client')
                                with daemon.connect() as third:
                                        expect_echo(third, b'third', what='the third client')
                        expect_echo(first, b'first, still served', what='the first client')
                expect_clean_exit(daemon)


run(listener_survives_first_fork)
