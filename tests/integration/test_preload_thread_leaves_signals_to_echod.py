#!/usr/bin/env python3
"""A library preloaded into the daemon starts a thread of its own (as tracers and agents
do), which blocks no signal: the kernel then delivers a signal sent to the process to that
thread rather than to the one that blocks it and reads it from a signalfd. echod and its
acceptor send such a signal on to their reading thread: connections are reaped as they end
(SIGCHLD, STATUS back to 0 active, no zombie), and SIGTERM stops the daemon as it should
(it drains, says so, exits 0), rather than killing it outright."""
import os
import signal

from echod_test import (THREAD_AT_START, Daemon, bound, expect, expect_echo, preload, run,
                        skip, wait_until)

N = 10


def threads(pid):
        with open(f'/proc/{pid}/status') as f:
                return int(next(line.split()[1] for line in f if line.startswith('Threads:')))


def signals_reach_echod_through_a_foreign_thread():
        if not os.path.exists(THREAD_AT_START):
                skip('no thread-at-start library (THREAD_AT_START)')
        with Daemon(['--listen', '127.0.0.1:{port}'],
                    env={'LD_PRELOAD': preload(THREAD_AT_START)}) as daemon:
                # The acceptor is named once it has exec'd, before the dynamic loader has
                # run the preload's constructor (slow under ASan): wait for the thread.
                for pid, what in ((daemon.pid, 'echod'), (daemon.acceptor(), 'the acceptor')):
                        expect(wait_until(lambda pid=pid: threads(pid) >= 2, bound(5)),
                               f'{what} runs {threads(pid)} thread(s): the preload did not '
                               'start one')
                for i in range(N):
                        with daemon.connect(timeout=bound(5)) as sock:
                                expect_echo(sock, b'connection %d' % i)
                daemon.expect_status(f'0 active, {N} total connections')
                expect(wait_until(lambda: not daemon.zombies(), bound(3)),
                       f'zombies left: {daemon.zombies()}')
                held = daemon.connect(timeout=bound(5))
                expect_echo(held, b'held')

                daemon.signal(signal.SIGTERM)
                status = daemon.wait_exit(bound(10))
                expect(status == 0, f'SIGTERM: exit status {status}, not 0 (killed by it?)')
                expect(daemon.log_lines('stopping:'), 'the daemon did not drain')
                held.settimeout(bound(5))
                expect(held.recv(1) == b'', 'the held connection did not end cleanly')


run(signals_reach_echod_through_a_foreign_thread)
