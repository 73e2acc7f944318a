#!/usr/bin/env python3
"""What an administrator may load into the daemon does not break it: a preloaded library
whose constructor calls setenv(), and which, in each connection's child, calls libc as any
code may (strerror(), malloc(), snprintf(), setenv(), stdio: tests/helpers/libc-in-child.c,
from the shutdown() every child makes). Every connection echoes, every child gets through
libc and exits normally, none is killed. (The lean child, which took the heap and libsystemd
away from its children, killed every one of them here with SIGSEGV.)"""
import os

from echod_test import (LIBC_IN_CHILD, Daemon, bound, expect, expect_clean_exit, expect_echo,
                        preload, run, skip, wait_until)

N = 20


def children_may_call_libc():
        if not os.path.exists(LIBC_IN_CHILD):
                skip('no libc-in-child library (LIBC_IN_CHILD)')
        with Daemon(['--listen', '127.0.0.1:{port}'], env={
                        'LD_PRELOAD': preload(LIBC_IN_CHILD),
                        'ECHOD_TEST_CHILD_MARKS': '{tmp}/marks'}) as daemon:
                marks = os.path.join(daemon.tmp, 'marks')
                for i in range(N):
                        with daemon.connect(timeout=bound(5)) as sock:
                                expect_echo(sock, b'connection %d' % i)
                                sock.shutdown(1)
                                sock.settimeout(bound(5))
                                expect(sock.recv(1) == b'', f'connection {i}: no end of stream')
                got_through = wait_until(lambda: len(lines(marks)) >= N, bound(5))
                expect(got_through, f'{len(lines(marks))} of {N} children got through libc: '
                                    f'{lines(marks)[:3]}')
                expect(all(line.endswith('Broken pipe') for line in lines(marks)),
                       f'strerror() in a child: {lines(marks)[:3]}')
                killed = daemon.log_lines('killed by signal')
                expect(not killed, f'children killed: {killed[:3]}')
                expect_clean_exit(daemon)


def lines(path):
        try:
                with open(path) as f:
                        return f.read().splitlines()
        except FileNotFoundError:
                return []


run(children_may_call_libc)
