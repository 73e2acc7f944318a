#!/usr/bin/env python3
"""--inetd: the connection on standard input is echoed to the end, then the process exits 0."""
import random
import re

from echod_test import (Daemon, bound, expect, expect_same_stream, round_trip, run,
                        wait_until)


def inetd_connection_is_echoed_then_exits_zero():
        with Daemon(['--inetd'], activate='127.0.0.1:{port}', accept=True, inetd=True,
                    notify=False) as ssa:
                payload = random.randbytes(300_000)
                with ssa.connect() as client:
                        expect_same_stream(payload, round_trip(client, payload))

                exited = wait_until(lambda: re.findall(r'Child (\d+) died with code (\d+)',
                                                       ssa.stderr_text()), bound(10))
                expect(exited, f'expected the --inetd process to exit, '
                               f'stderr: {ssa.stderr_text()!r}')
                expect(exited[0][1] == '0', f'expected exit code 0, saw {exited[0][1]}')
                expect(not ssa.log_lines(), f'expected no complaint, saw {ssa.log_lines()}')


run(inetd_connection_is_echoed_then_exits_zero)
