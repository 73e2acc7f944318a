#!/usr/bin/env python3
"""With an fd store and --log-level=debug (each child reports its end to echod's main
process): when the main process dies (SIGKILL), every child with a stored connection hands it
over and exits with status 3, "handed over", its report written to a main process that is
gone: the write fails with EPIPE, it does not kill the child with SIGPIPE. The test stops
the acceptor (the children's parent) first, so that their exit statuses stay for it to read
(/proc/PID/stat's exit_code of the zombies), then lets it go."""
import os
import signal
import time

from echod_test import Daemon, bound, expect, expect_echo, proc_stat, run, wait_until

N = 5
HANDED_OVER = 3


def exit_code(pid):
        """A zombie's wait status (proc(5): field 52 of /proc/PID/stat), or None."""
        try:
                with open(f'/proc/{pid}/stat') as f:
                        return int(f.read().rsplit(')', 1)[1].split()[49])
        except (FileNotFoundError, IndexError, ValueError):
                return None


def describe(status):
        if os.WIFSIGNALED(status):
                return f'signal {signal.Signals(os.WTERMSIG(status)).name}'
        return f'exit {os.WEXITSTATUS(status)}'


def orphans_exit_handed_over():
        with Daemon(['--listen', '127.0.0.1:{port}', '--log-level=debug'],
                    fd_store=16) as daemon:
                clients = [daemon.connect(timeout=bound(5)) for _ in range(N)]
                for i, sock in enumerate(clients):
                        expect_echo(sock, b'hello %d' % i)
                expect(wait_until(lambda: len(daemon.notify.held()) == N, bound(2)),
                       f'{len(daemon.notify.held())} of {N} stored')
                # PID 1 holds them; echod tells their children once it has PID 1's
                # answer to its barrier, through the acceptor: a moment later.
                time.sleep(0.5)
                children = daemon.live_children()
                expect(len(children) == N, f'{len(children)} children, not {N}')
                acceptor = daemon.acceptor()
                os.kill(acceptor, signal.SIGSTOP)

                daemon.process.send_signal(signal.SIGKILL)
                daemon.wait_exit(bound(5))
                zombies = wait_until(lambda: all((proc_stat(p) or {}).get('state') == 'Z'
                                                 for p in children), bound(5))
                statuses = {pid: exit_code(pid) for pid in children}
                os.kill(acceptor, signal.SIGCONT)
                expect(zombies, 'the children did not exit once the main process died')
                ended = sorted({describe(s) for s in statuses.values() if s is not None})
                expect(ended == [f'exit {HANDED_OVER}'],
                       f'the children ended with {ended}, not all exit {HANDED_OVER}')
                expect(wait_until(lambda: not os.path.exists(f'/proc/{acceptor}'), bound(5))
                       or proc_stat(acceptor)['state'] == 'Z',
                       'the acceptor did not exit once its children had')
                for sock in clients:
                        sock.close()


run(orphans_exit_handed_over)
