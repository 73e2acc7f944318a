#!/usr/bin/env python3
"""Socket-activated with Accept=yes: each connection gets a daemon process of its own, which
echoes it to the end and exits 0."""
import random
import re

from echod_test import (Daemon, bound, expect, expect_same_stream, round_trip, run,
                        wait_until)


def exit_codes(ssa):
        """{pid: exit code} of the per-connection processes, as systemd-socket-activate saw."""
        found = re.findall(r'Child (\d+) died with code (\d+)', ssa.stderr_text())
        return {int(pid): int(code) for pid, code in found}


def each_connection_gets_its_own_process():
        with Daemon(activate='127.0.0.1:{port}', accept=True, notify=False) as ssa:
                first, second = ssa.connect(), ssa.connect()
                processes = wait_until(lambda: len(ssa.live_children()) == 2 and
                                       ssa.live_children(), bound(10))
                expect(processes, f'expected one process per open connection (2), saw '
                                  f'{ssa.live_children()}')

                payloads = [random.randbytes(300_000), b'second\0client']
                for client, payload in zip((first, second), payloads):
                        with client:
                                expect_same_stream(payload, round_trip(client, payload))

                codes = wait_until(lambda: set(processes) <= exit_codes(ssa).keys() and
                                   exit_codes(ssa), bound(10))
                expect(codes, f'expected both processes {processes} to exit, '
                              f'stderr: {ssa.stderr_text()!r}')
                expect(all(codes[pid] == 0 for pid in processes),
                       f'expected exit code 0 from each of {processes}, saw {codes}')


run(each_connection_gets_its_own_process)
