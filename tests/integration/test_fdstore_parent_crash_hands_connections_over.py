#!/usr/bin/env python3
"""With an fd store: when the main process dies (SIGKILL: a crash, the OOM killer, the
watchdog), every child hands its connection over as on a stop, at once: what it read is
written back, the connection stays open for the next instance (the test holds the stored
copies, as PID 1 would), and no child is left running. Connections younger than the store's
age were never stored: those end, after their echo."""
import signal
import time

from echod_test import (Daemon, bound, expect, expect_echo, peer_has_closed, recv_exactly,
                        run, wait_until)

N_OLD = 10


def children_hand_over_when_the_parent_dies():
        with Daemon(['--listen', '127.0.0.1:{port}'], fd_store=64) as daemon:
                old = [daemon.connect(timeout=bound(5)) for _ in range(N_OLD)]
                for i, sock in enumerate(old):
                        expect_echo(sock, b'old %d;' % i)
                stored_in_time = wait_until(
                        lambda: sum(len(fds) for _, fds in daemon.notify.stored()) == N_OLD,
                        bound(2))
                expect(stored_in_time, f'the {N_OLD} connections were not stored within '
                                       f'{bound(2)} s')
                # PID 1 holds them; echod tells their children once it has PID 1's
                # answer to its barrier, through the acceptor: a moment later.
                time.sleep(0.5)
                young = daemon.connect(timeout=bound(5))
                expect_echo(young, b'young')
                children = daemon.live_children()

                daemon.process.send_signal(signal.SIGKILL)
                daemon.wait_exit(bound(5))
                gone = wait_until(lambda: not [p for p in children if alive(p)], bound(3))
                expect(gone, 'children still run after their parent died')

                by_port = {fd.getpeername()[1]: fd
                           for _, fds in daemon.notify.stored() for fd in fds}
                for i, sock in enumerate(old):
                        expect(not peer_has_closed(sock), f'client {i}: its connection was closed')
                        sock.sendall(b'resumed %d' % i)
                        copy = by_port[sock.getsockname()[1]]
                        got = recv_exactly(copy, len(b'resumed %d' % i), timeout=bound(5),
                                           what='bytes for the next instance')
                        expect(got == b'resumed %d' % i, f'client {i}: {got!r}')
                        sock.close()
                expect(wait_until(lambda: peer_has_closed(young), bound(3)),
                       'a connection too young for the store was left open')
                young.close()


def alive(pid):
        try:
                with open(f'/proc/{pid}/stat') as f:
                        return f.read().rsplit(')', 1)[1].split()[0] not in ('Z', 'X')
        except (FileNotFoundError, ProcessLookupError):       # gone while we read
                return False


run(children_hand_over_when_the_parent_dies)
