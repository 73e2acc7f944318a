#!/usr/bin/env python3
"""With an fd store and --log-level=debug (each child reports its end to the main process):
when the main process dies (SIGKILL), every child with a stored connection hands it over and
exits with status 3, "handed over", its report written to a parent that is gone: the write
fails with EPIPE, it does not kill the child with SIGPIPE. (The test is the children's
subreaper, to see how they exit.)"""
import ctypes
import os
import signal

from echod_test import Daemon, bound, expect, expect_echo, run, wait_until

PR_SET_CHILD_SUBREAPER = 36
N = 5
HANDED_OVER = 3


def orphans_exit_handed_over():
        libc = ctypes.CDLL(None, use_errno=True)
        expect(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, 'cannot be a subreaper')
        with Daemon(['--listen', '127.0.0.1:{port}', '--log-level=debug'],
                    fd_store=16) as daemon:
                clients = [daemon.connect(timeout=bound(5)) for _ in range(N)]
                for i, sock in enumerate(clients):
                        expect_echo(sock, b'hello %d' % i)
                expect(wait_until(lambda: len(daemon.notify.held()) == N, bound(2)),
                       f'{len(daemon.notify.held())} of {N} stored')
                children = daemon.live_children()
                expect(len(children) == N, f'{len(children)} children, not {N}')

                daemon.process.send_signal(signal.SIGKILL)
                daemon.wait_exit(bound(5))
                statuses = {}
                for pid in children:
                        _, status = os.waitpid(pid, 0)   # reparented to us
                        statuses[pid] = (f'signal {signal.Signals(os.WTERMSIG(status)).name}'
                                         if os.WIFSIGNALED(status) else
                                         f'exit {os.WEXITSTATUS(status)}')
                expect(all(s == f'exit {HANDED_OVER}' for s in statuses.values()),
                       f'the children ended with {sorted(set(statuses.values()))}, not all '
                       f'exit {HANDED_OVER}')
                for sock in clients:
                        sock.close()


run(orphans_exit_handed_over)
