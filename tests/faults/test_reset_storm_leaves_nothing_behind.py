#!/usr/bin/env python3
"""1000 connections opened and reset at once (SO_LINGER 0, an RST instead of a FIN), from four
threads, while well-behaved clients keep coming: every child sees the reset, exits and is
reaped; no zombie is left, STATUS is back at 0 active with every connection counted, the
parent holds no more descriptors than before, it is idle once the storm is over, and it still
serves."""
import threading
import time

from echod_test import (WRAPPER, Bystanders, Daemon, bound, connect, expect, expect_clean_exit,
                        expect_still_serving, open_fds, reset, run, wait_until)

# Under valgrind each child costs a leak check as it exits: a tenth is still a storm.
N_RESETS = 100 if WRAPPER else 1000
N_THREADS = 4
QUIET_SECONDS = 2
MAX_QUIET_CPU_SECONDS = 0.2


def reset_storm(address, n, errors):
        for _ in range(n):
                try:
                        reset(connect(address))
                except OSError as e:
                        errors.append(repr(e))
                        return


def steady_fds(pid):
        """The parent's descriptors, at a moment when sd_notify() holds none open for a
        STATUS: the fewest of a few looks."""
        looks = []
        for _ in range(10):
                looks.append(open_fds(pid))
                time.sleep(0.02)
        return min(looks, key=len)


def resets_are_reaped_and_counted():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                fds_before = steady_fds(daemon.pid)
                errors = []
                storm = [threading.Thread(target=reset_storm,
                                          args=(daemon.address, N_RESETS // N_THREADS, errors))
                         for _ in range(N_THREADS)]
                with Bystanders(daemon.address) as bystanders:
                        for t in storm:
                                t.start()
                        for t in storm:
                                t.join(bound(60))
                        expect(not errors, f'connecting failed during the storm: {errors[:3]}')
                        expect(not any(t.is_alive() for t in storm), 'the storm did not end')
                bystanders.check()
                total = N_RESETS + bystanders.count()
                daemon.expect_status(f'0 active, {total} total connections', timeout=bound(20))
                expect(wait_until(lambda: not daemon.children(), bound(10)),
                       f'{len(daemon.children())} children left, {len(daemon.zombies())} of '
                       'them zombies')

                fds_after = steady_fds(daemon.pid)
                expect(len(fds_after) == len(fds_before),
                       f'the parent held {len(fds_before)} descriptors before the storm, '
                       f'{len(fds_after)} after: {sorted(fds_after.items())[:12]}...')

                cpu_before = daemon.cpu_seconds()
                time.sleep(QUIET_SECONDS)
                cpu_used = daemon.cpu_seconds() - cpu_before
                expect(cpu_used < MAX_QUIET_CPU_SECONDS,
                       f'the daemon used {cpu_used:.2f} s of CPU in {QUIET_SECONDS} s after the '
                       'storm, with nothing to do')
                problems = daemon.log_lines('killed') + daemon.log_lines('accept:') + \
                        daemon.log_lines('fork:')
                expect(not problems, f'unexpected log lines: {problems}')
                expect_still_serving(daemon, 'after the reset storm')
                expect_clean_exit(daemon)


run(resets_are_reaped_and_counted)
