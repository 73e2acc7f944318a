#!/usr/bin/env python3
"""Socket-activated (Accept=no): 8 MiB of random bytes come back complete and in order,
followed by end of stream once the client half-closes."""
import random

from echod_test import Daemon, bound, expect_clean_exit, expect_same_stream, round_trip, run

PAYLOAD_SIZE = 8 << 20


def large_payload_round_trips_exactly():
        payload = random.randbytes(PAYLOAD_SIZE)
        with Daemon(activate='127.0.0.1:{port}') as daemon:
                with daemon.connect() as client:
                        echoed = round_trip(client, payload, timeout=bound(60))
                expect_same_stream(payload, echoed, 'the 8 MiB echo')
                expect_clean_exit(daemon)


run(large_payload_round_trips_exactly)
