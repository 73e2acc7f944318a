#!/usr/bin/env python3
"""echod starts its acceptor from the file it opened at its start (execveat), and by its path
where that cannot be: execveat(2) missing (ENOSYS: qemu-user before 8.0, which Debian 12's
qemu-user-static is) or refused by a seccomp filter (EPERM, as container runtimes and
systemd's SystemCallFilter= refuse), or a program that an interpreter must open by its name
(ENOENT: a script, or any program under qemu-user through binfmt_misc, which cannot reopen a
close-on-exec fd). Each way, echod starts, echoes, and when the acceptor is killed starts
another the same way. The first two under a seccomp filter, the last with a shell script
as the acceptor."""
import os
import shlex
import shutil
import signal
import tempfile

from echod_test import (ACCEPTOR, WITHOUT_SYSCALL, WRAPPER, Daemon, bound, expect,
                        expect_echo, run, skip, skip_without_seccomp_helper, wait_until)


def serves_through_two_acceptors(daemon, how):
        first = daemon.acceptor()
        expect(first, f'{how}: no acceptor runs')
        with daemon.connect(timeout=bound(5)) as sock:
                expect_echo(sock, b'through the first acceptor')
        os.kill(first, signal.SIGKILL)
        expect(wait_until(lambda: daemon.acceptor(timeout=0) not in (None, first), bound(10)),
               f'{how}: no new acceptor after the first was killed')
        with daemon.connect(timeout=bound(5)) as sock:
                expect_echo(sock, b'through the next one')
        failures = daemon.log_lines('cannot start the acceptor')
        expect(not failures, f'{how}: echod could not start an acceptor: {failures}')


def execveat_refused(errno_name):
        how = f'execveat failing with {errno_name}'
        with Daemon(['--listen', '127.0.0.1:{port}'],
                    under=[WITHOUT_SYSCALL, 'execveat' +
                           (':EPERM' if errno_name == 'EPERM' else '')]) as daemon:
                serves_through_two_acceptors(daemon, how)


def script_as_acceptor():
        directory = tempfile.mkdtemp(prefix='echod-script-')
        try:
                script = os.path.join(directory, 'acceptor-script')
                with open(script, 'w') as f:
                        f.write(f'#!/bin/sh\nexec {shlex.quote(ACCEPTOR)} "$@"\n')
                os.chmod(script, 0o755)
                daemon = Daemon(['--listen', '127.0.0.1:{port}'])
                daemon.acceptor_program = script
                with daemon:
                        serves_through_two_acceptors(daemon, 'a script as the acceptor')
        finally:
                shutil.rmtree(directory)


def acceptor_runs_by_its_path():
        if WRAPPER:
                skip('valgrind runs a program\'s execveat as an execve of its own: no exec '
                     'here would be one from the open file')
        skip_without_seccomp_helper('execveat')
        execveat_refused('ENOSYS')
        execveat_refused('EPERM')
        script_as_acceptor()


run(acceptor_runs_by_its_path)
