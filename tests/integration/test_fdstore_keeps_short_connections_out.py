#!/usr/bin/env python3
"""With an fd store (FDSTORE=64 and a real NOTIFY_SOCKET that keeps what is passed, as PID 1
does): 300 short connections never reach the store; 40 connections held for a second go in,
in one or two FDSTORE=1 messages (one per flush period they took to open; a name each,
never reused), never one message per connection; and a stored connection the client ends still ends for it (echo, then EOF), its
stored copy hanging up, which is what makes PID 1 drop it."""
import select
import time

from echod_test import (Daemon, bound, expect, expect_clean_exit, expect_echo, expect_eof,
                        SLOWDOWN, recv_exactly, run, wait_until)

N_SHORT = 300
N_HELD = 40


def short_connections_stay_out_of_the_store():
        with Daemon(['--listen', '127.0.0.1:{port}'], fd_store=64) as daemon:
                for i in range(N_SHORT):
                        with daemon.connect(timeout=bound(5)) as sock:
                                expect_echo(sock, b'short %d' % i)
                time.sleep(0.6)         # past the age at which a connection is stored
                # Under valgrind a child takes longer than the store's age to get going
                # and to end, even for a client that is done at once: allow a few there.
                n_stored = sum(len(fds) for _, fds in daemon.notify.stored())
                allowed = 0 if SLOWDOWN == 1 else N_SHORT // 10
                expect(n_stored <= allowed, f'{n_stored} of {N_SHORT} short connections reached '
                                            f'the fd store (at most {allowed} may)')

                n_messages_before = len(daemon.notify.stored())
                started = time.monotonic()
                held = [daemon.connect(timeout=bound(5)) for _ in range(N_HELD)]
                for i, sock in enumerate(held):
                        expect_echo(sock, b'held %d' % i)
                # One message a flush (every 0.25 s) at most, whatever the number of
                # connections: two when they all open at once.
                ticks = int((time.monotonic() - started) / 0.25) + 2
                expect(wait_stored(daemon, n_stored + N_HELD),
                       f'expected {N_HELD} connections in the store within {bound(2)} s, got '
                       f'{sum(len(fds) for _, fds in daemon.notify.stored())}')
                messages = daemon.notify.stored()[n_messages_before:]
                names = [name for name, _ in daemon.notify.stored()]
                expect(len(messages) <= min(ticks, N_HELD // 4),
                       f'{N_HELD} connections, opened in {ticks - 2} flush periods, took '
                       f'{len(messages)} messages')
                expect(len(set(names)) == len(names), f'a batch name used twice: {names}')

                # The client ends one: it gets its echo and EOF although the store holds a copy.
                stored_copies = [fd for _, fds in messages for fd in fds]
                held[0].sendall(b'last words')
                held[0].shutdown(1)
                got = recv_exactly(held[0], len(b'last words'), timeout=bound(5),
                                   what='the echo of a stored connection')
                expect(got == b'last words', f'the echo of a stored connection: {got!r}')
                expect_eof(held[0], what='a stored connection its client ended')
                wait_until(lambda: hung_up(stored_copies), bound(2))
                expect(len(hung_up(stored_copies)) == 1, f'expected the one ended connection to hang up in the '
                                          f'store, {len(hung_up(stored_copies))} did')
                for i, sock in enumerate(held[1:], 1):
                        expect_echo(sock, b'still here %d' % i)
                        sock.close()
                expect_clean_exit(daemon)


def wait_stored(daemon, n):
        deadline = time.monotonic() + bound(2)
        while time.monotonic() < deadline:
                if sum(len(fds) for _, fds in daemon.notify.stored()) >= n:
                        return True
                time.sleep(0.05)
        return False


def hung_up(socks):
        """Those of @socks that poll POLLHUP now, as PID 1's FDPOLL would see them."""
        poller = select.poll()
        for sock in socks:
                poller.register(sock.fileno(), 0)
        hung = {fd for fd, events in poller.poll(0) if events & select.POLLHUP}
        return [sock for sock in socks if sock.fileno() in hung]


run(short_connections_stay_out_of_the_store)
