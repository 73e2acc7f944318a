#!/usr/bin/env python3
"""A connection's child is born without libsystemd and the libraries only it pulls in, and
without the parent's heap: the parent maps them, a live child's /proc/PID/maps does not, and
the child echoes all the same."""
import os

from echod_test import Daemon, expect, expect_clean_exit, expect_echo, fail, run

# src/lean.c's list: libsystemd 252 and what it links on Debian 12.
PARENT_ONLY = ('libsystemd.so', 'libcap.so', 'libgcrypt.so', 'libgpg-error.so', 'liblzma.so',
               'libzstd.so', 'liblz4.so')


def mapped_objects(pid):
        """The file names of the shared objects @pid maps."""
        with open(f'/proc/{pid}/maps') as f:
                paths = [line.split(None, 5)[5].strip() for line in f if len(line.split()) == 6]
        return {os.path.basename(p) for p in paths if p.startswith('/') or p == '[heap]'}


def parent_only(names):
        """The parent's alone: the libraries, and the heap (when there is one: the sanitizers
        and valgrind allocate elsewhere)."""
        return sorted(n for n in names if n.startswith(PARENT_ONLY) or n == '[heap]')


def child_maps_hold_no_parent_only_library():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                client = daemon.connect()
                expect_echo(client, b'first bytes, before the look')
                [child] = daemon.live_children()

                in_parent = parent_only(mapped_objects(daemon.pid))
                in_child = parent_only(mapped_objects(child))

                if not any(n.startswith('libsystemd.so') for n in in_parent):
                        fail(f'the daemon does not map libsystemd: {sorted(in_parent)}')
                expect(not in_child, f'the child {child} maps {in_child}, its parent '
                       f'{in_parent}: they should have been left out of the fork')
                expect(any(n.startswith('libc.so') for n in mapped_objects(child)),
                       f'the child {child} does not map libc: is this the right process?')
                # The child runs on without them: a call into one would have killed it.
                expect_echo(client, b'and after it')
                client.close()
                expect_clean_exit(daemon)


run(child_maps_hold_no_parent_only_library)
