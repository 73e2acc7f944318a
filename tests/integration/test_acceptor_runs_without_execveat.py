#!/usr/bin/env python3
"""Where execveat(2) fails with ENOSYS (qemu-user before 8.0, which Debian 12's qemu-user-static
is, and which buildds of other architectures may use; or a seccomp filter), echod runs the
acceptor by its path instead of from the file it opened: it starts, echoes, and when the
acceptor is killed, starts another the same way. Here a seccomp filter makes execveat fail."""
import os
import signal
import subprocess

from echod_test import (WITHOUT_SYSCALL, Daemon, bound, expect, expect_echo, run, skip,
                        wait_until)


def acceptor_runs_by_its_path():
        if not os.access(WITHOUT_SYSCALL, os.X_OK):
                skip('no without-syscall helper (WITHOUT_SYSCALL)')
        probe = subprocess.run([WITHOUT_SYSCALL, 'execveat', 'true'], capture_output=True,
                               text=True)
        if probe.returncode != 0 and 'Invalid argument' in probe.stderr:
                skip('no seccomp filter can be set (PR_SET_SECCOMP: EINVAL, as under '
                     'qemu-user, which does not emulate seccomp)')
        with Daemon(['--listen', '127.0.0.1:{port}'],
                    under=[WITHOUT_SYSCALL, 'execveat']) as daemon:
                first = daemon.acceptor()
                expect(first, 'no acceptor runs')
                with daemon.connect(timeout=bound(5)) as sock:
                        expect_echo(sock, b'through an acceptor run by its path')

                os.kill(first, signal.SIGKILL)
                expect(wait_until(lambda: daemon.acceptor(timeout=0) not in (None, first),
                                  bound(10)), 'no new acceptor after the first was killed')
                with daemon.connect(timeout=bound(5)) as sock:
                        expect_echo(sock, b'through the next one')
                failures = daemon.log_lines('cannot start the acceptor')
                expect(not failures, f'echod could not start an acceptor: {failures}')


run(acceptor_runs_by_its_path)
