#!/usr/bin/env python3
"""Regression: the sketch wrote each buffer once and dropped whatever a short write left over.
A client with a tiny receive buffer sends several MiB while reading slowly: every byte must
come back, in order."""
import random
import socket
import time

from echod_test import (Daemon, bound, expect_clean_exit, expect_same_stream, round_trip,
                        run)

PAYLOAD_SIZE = 4 << 20
READ_SIZE = 4096


def slow_reader_gets_every_byte_in_order():
        payload = random.randbytes(PAYLOAD_SIZE)
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                client.connect(daemon.address)
                reads = 0

                def dawdle():
                        nonlocal reads
                        reads += 1
                        if reads % 16 == 0:
                                time.sleep(0.002)

                with client:
                        echoed = round_trip(client, payload, timeout=bound(60),
                                            recv_chunk=READ_SIZE, on_chunk=dawdle)
                expect_same_stream(payload, echoed, 'the echo through a tiny receive buffer')
                expect_clean_exit(daemon)


run(slow_reader_gets_every_byte_in_order)
