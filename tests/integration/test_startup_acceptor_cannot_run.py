#!/usr/bin/env python3
"""An acceptor program that cannot run (not executable; not a program at all) stops echod
at start with exit status 1 and one line naming the program and why, rather than a
service that says READY=1 and serves nobody while it starts acceptors that die."""
import os
import shutil
import stat
import tempfile

from echod_test import ACCEPTOR, echod_lines, expect, free_port, run, run_echod


def echod_with_acceptor(path):
        status, out, err = run_echod(['--listen', f'127.0.0.1:{free_port()}'],
                                     env={'ECHOD_ACCEPTOR': path})
        lines = echod_lines(err)
        return status, lines


def unusable_acceptor_stops_echod():
        directory = tempfile.mkdtemp(prefix='echod-acceptor-')
        try:
                not_executable = shutil.copy(ACCEPTOR, os.path.join(directory, 'not-executable'))
                os.chmod(not_executable, stat.S_IRUSR | stat.S_IWUSR)
                not_a_program = os.path.join(directory, 'not-a-program')
                with open(not_a_program, 'w') as f:
                        f.write('no program here\n')
                os.chmod(not_a_program, 0o755)
                for path, why in ((not_executable, 'Permission denied'),
                                  (not_a_program, 'Exec format error')):
                        status, lines = echod_with_acceptor(path)
                        expect(status == 1, f'{path}: exit status {status}, not 1: {lines}')
                        failed = [x for x in lines if 'cannot start the acceptor' in x]
                        expect(len(failed) == 1 and path in failed[0] and why in failed[0],
                               f'{path}: expected one line naming it and "{why}", got {lines}')
        finally:
                shutil.rmtree(directory)


run(unusable_acceptor_stops_echod)
