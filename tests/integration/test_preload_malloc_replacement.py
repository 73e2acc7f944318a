#!/usr/bin/env python3
"""A malloc replacement preloaded into the daemon (jemalloc, as an administrator may load it
for any service) takes over malloc() in echod, in its acceptor and in every child, and
nothing breaks: every connection echoes, with the library's own libc use in each child on
top (tests/helpers/libc-in-child.c), and the daemon stops cleanly. Not under a sanitizer or
valgrind, which bring their own malloc."""
import glob
import os

from echod_test import (LIBC_IN_CHILD, WRAPPER, Daemon, bound, expect, expect_clean_exit,
                        expect_echo, run, sanitizer_runtime, skip,
                        wait_until)

N = 20


def malloc_replacement_takes_over():
        jemalloc = sorted(glob.glob('/usr/lib/*/libjemalloc.so.2'))
        if not jemalloc:
                skip('no jemalloc (apt-get install libjemalloc2)')
        if WRAPPER or sanitizer_runtime():
                skip('valgrind and the sanitizers replace malloc themselves')
        if not os.path.exists(LIBC_IN_CHILD):
                skip('no libc-in-child library (LIBC_IN_CHILD)')
        with Daemon(['--listen', '127.0.0.1:{port}'], env={
                        'LD_PRELOAD': f'{jemalloc[0]}:{LIBC_IN_CHILD}',
                        'ECHOD_TEST_CHILD_MARKS': '{tmp}/marks'}) as daemon:
                for pid, what in ((daemon.pid, 'echod'), (daemon.acceptor(), 'the acceptor')):
                        maps = open(f'/proc/{pid}/maps').read()
                        expect('libjemalloc' in maps, f'{what} does not map jemalloc')
                for i in range(N):
                        with daemon.connect(timeout=bound(5)) as sock:
                                expect_echo(sock, b'connection %d' % i)
                marks = os.path.join(daemon.tmp, 'marks')
                expect(wait_until(lambda: os.path.exists(marks) and
                                  len(open(marks).read().splitlines()) >= N, bound(5)),
                       'the children did not all get through libc')
                killed = daemon.log_lines('killed by signal')
                expect(not killed, f'children killed: {killed[:3]}')
                expect_clean_exit(daemon)


run(malloc_replacement_takes_over)
