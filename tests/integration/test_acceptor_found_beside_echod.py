#!/usr/bin/env python3
"""Without $ECHOD_ACCEPTOR, echod runs the acceptor beside its own executable (a build tree, a
copy) before the one a package installs, so that an echod and an acceptor from different
builds never meet, whatever else is installed. Both programs copied to a directory of their
own: the copy's acceptor is the one that runs (its file is mapped in the acceptor process),
and connections are echoed."""
import os
import shutil
import tempfile

from echod_test import ACCEPTOR, ECHOD, Daemon, bound, connect, expect, expect_echo, run


def mapped_files(pid):
        with open(f'/proc/{pid}/maps') as maps:
                return {line.split(None, 5)[5].strip() for line in maps
                        if len(line.split(None, 5)) == 6}


def acceptor_beside_echod_is_used():
        os.environ.pop('ECHOD_ACCEPTOR', None)  # the test environment names the build's own
        directory = tempfile.mkdtemp(prefix='echod-copy-')
        try:
                copy = shutil.copy2(ECHOD, os.path.join(directory, 'echod'))
                acceptor_copy = shutil.copy2(ACCEPTOR, os.path.join(directory, 'echod-acceptor'))
                daemon = Daemon(['--listen', '127.0.0.1:{port}'])
                daemon.executable = copy
                daemon.acceptor_program = None
                with daemon:
                        with connect(daemon.address, bound(5)) as sock:
                                expect_echo(sock, b'from the copy')
                        pid = daemon.acceptor()
                        expect(pid, 'no acceptor runs')
                        expect(acceptor_copy in mapped_files(pid),
                               f'the acceptor does not run {acceptor_copy}: '
                               f'{sorted(mapped_files(pid))}')
        finally:
                shutil.rmtree(directory)


run(acceptor_beside_echod_is_used)
