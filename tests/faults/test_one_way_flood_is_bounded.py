#!/usr/bin/env python3
"""A 50 MiB one-way flood: a client sends without ever reading its echo. Its child stops
reading once it cannot write back, so TCP flow control stalls the flooder after a few MiB and
the child grows no more than a well-behaved client's; the idle timeout (2 s) then closes it.
Meanwhile well-behaved clients are served with every byte and the parent stays nearly idle."""
import threading
import time

from echod_test import (Bystanders, Daemon, bound, expect, expect_clean_exit, expect_echo,
                        expect_still_serving, flood, garbage, resident_kib, run, wait_until)

IDLE_SECONDS = 2
FLOOD_BYTES = 50 << 20
MAX_CPU_SECONDS = 1.0
# The child's buffer is 64 KiB; a few pages more are noise.
MAX_EXTRA_KIB = 2048


def stalled(progress, reference):
        """Whether the flooder's byte count stood still for a moment; meanwhile the reference
        client, well-behaved, gets an echo (which also keeps the idle timeout off it)."""
        before = progress.get('sent', 0)
        expect_echo(reference, b'.', what='the reference client')
        time.sleep(0.3)
        return before > 0 and progress.get('sent') == before


def flooder_is_stalled_then_closed():
        with Daemon(['--listen', '127.0.0.1:{port}', '--idle-timeout', str(IDLE_SECONDS)]) \
                        as daemon:
                reference = daemon.connect()
                expect_echo(reference, garbage(65536), what='the reference client')
                [reference_child] = daemon.live_children()

                cpu_before = daemon.cpu_seconds()
                flooder, progress, result = daemon.connect(), {}, {}
                thread = threading.Thread(target=lambda: result.update(outcome=flood(
                        flooder, FLOOD_BYTES, bound(60), progress)), daemon=True)
                thread.start()
                flooder_children = wait_until(lambda: [
                        c for c in daemon.live_children() if c != reference_child], bound(5))
                expect(len(flooder_children) == 1,
                       f'expected one child for the flooder, saw {flooder_children}')
                with Bystanders(daemon.address) as bystanders:
                        expect(wait_until(lambda: stalled(progress, reference), bound(10), 0),
                               f'the flooder never stalled: {progress.get("sent")} bytes sent')
                        flooder_kib = resident_kib(flooder_children[0])
                        reference_kib = resident_kib(reference_child)
                        expect(flooder_kib <= reference_kib + MAX_EXTRA_KIB,
                               f'the flooder\'s child holds {flooder_kib} KiB, a well-behaved '
                               f'client\'s {reference_kib} KiB')

                        thread.join(bound(IDLE_SECONDS + 10))
                        expect(not thread.is_alive(), 'the flooder was not closed within '
                                                      f'{bound(IDLE_SECONDS + 10)} s')
                sent, error = result['outcome']
                expect(error is not None, f'the flooder sent {sent} bytes and was never closed')
                expect(sent < FLOOD_BYTES, f'the daemon took all {sent} bytes of a client that '
                                           'never read')
                cpu_used = daemon.cpu_seconds() - cpu_before
                expect(cpu_used < MAX_CPU_SECONDS,
                       f'the parent used {cpu_used:.2f} s of CPU during the flood')
                bystanders.check()
                expect_still_serving(daemon, 'after the flood')
                flooder.close()
                reference.close()
                expect_clean_exit(daemon)


run(flooder_is_stalled_then_closed)
