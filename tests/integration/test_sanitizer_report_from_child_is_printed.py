#!/usr/bin/env python3
"""A sanitizer sees the children: in a build with AddressSanitizer, a memory error in a
connection's child (a use after free, provoked by a preloaded library in the shutdown() every
child makes: tests/helpers/libc-in-child.c) is reported on the daemon's standard error, and
the child then exits; it does not hang. (In the lean child, the report's own symbol lookups
faulted over and over: the child spun at 100 % CPU and printed nothing.) Skips unless the
daemon is built with AddressSanitizer."""
import os

from echod_test import (LIBC_IN_CHILD, WRAPPER, Daemon, bound, cpu_seconds, expect,
                        expect_clean_exit, expect_echo, preload, run, sanitizer_runtime, skip,
                        wait_until)


def child_report_is_printed():
        if not sanitizer_runtime() or WRAPPER:
                skip('the daemon is not built with AddressSanitizer')
        if not os.path.exists(LIBC_IN_CHILD):
                skip('no libc-in-child library (LIBC_IN_CHILD)')
        with Daemon(['--listen', '127.0.0.1:{port}'], reports_expected=True, env={
                        'LD_PRELOAD': preload(LIBC_IN_CHILD),
                        'ECHOD_TEST_CHILD_BUG': '1'}) as daemon:
                sock = daemon.connect(timeout=bound(5))
                expect_echo(sock, b'to the end')
                [child] = wait_until(lambda: daemon.live_children(), bound(5))
                sock.shutdown(1)        # the child ends: the bug, in its shutdown()
                reported = wait_until(lambda: 'ERROR: AddressSanitizer: heap-use-after-free'
                                      in daemon.stderr_text(), bound(10))
                expect(reported, 'no AddressSanitizer report on the daemon\'s stderr: '
                                 f'{daemon.stderr_text()[-600:]!r}')
                gone = wait_until(lambda: not daemon.live_children(), bound(10))
                expect(gone, f'the child still runs after its report, {cpu_seconds(child):.1f} '
                             's of CPU used')
                expect('libc-in-child' in daemon.stderr_text(),
                       'the report does not show where the error was')
                sock.close()
                with daemon.connect(timeout=bound(5)) as other:
                        expect_echo(other, b'still serving')
                expect_clean_exit(daemon)


run(child_report_is_printed)
