#!/usr/bin/env python3
"""With an fd store (FDSTORE=64 and a real NOTIFY_SOCKET that keeps what is passed, as PID 1
does): 300 short connections never reach the store; 40 connections held for a second go in,
each alone, under a name of its own never reused, with FDPOLL=0, followed by a barrier; and
a stored connection the client ends still ends for it (echo, then EOF), and echod removes it
from the store by its name (FDSTOREREMOVE=1)."""
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
                held = [daemon.connect(timeout=bound(5)) for _ in range(N_HELD)]
                for i, sock in enumerate(held):
                        expect_echo(sock, b'held %d' % i)
                expect(wait_stored(daemon, n_stored + N_HELD),
                       f'expected {N_HELD} connections in the store within {bound(2)} s, got '
                       f'{sum(len(fds) for _, fds in daemon.notify.stored())}')
                messages = daemon.notify.stored()[n_messages_before:]
                names = [name for name, _ in daemon.notify.stored()]
                expect(all(len(fds) == 1 for _, fds in messages),
                       f'one connection a message: {[len(fds) for _, fds in messages]}')
                expect(len(set(names)) == len(names), f'a name used twice: {names}')
                unpolled = [m for m in daemon.notify.messages
                            if m.get('FDSTORE') == '1' and m.get('FDPOLL') != '0']
                expect(not unpolled, f'stored without FDPOLL=0: {unpolled[:2]}')
                expect(daemon.notify.count('BARRIER') >= 1, 'no barrier after the stores')

                # The client ends one: it gets its echo and EOF although the store holds a copy.
                name_of_port = {fds[0].getpeername()[1]: name for name, fds in messages}
                ended_name = name_of_port[held[0].getsockname()[1]]
                held[0].sendall(b'last words')
                held[0].shutdown(1)
                got = recv_exactly(held[0], len(b'last words'), timeout=bound(5),
                                   what='the echo of a stored connection')
                expect(got == b'last words', f'the echo of a stored connection: {got!r}')
                expect_eof(held[0], what='a stored connection its client ended')
                removed = wait_until(lambda: daemon.notify.wait_for(
                        lambda m: m.get('FDSTOREREMOVE') == '1' and
                        m.get('FDNAME') == ended_name, 0) is not None, bound(2))
                expect(removed, f'no FDSTOREREMOVE=1 for {ended_name}')
                held_names = [name for name, _ in daemon.notify.held()]
                expect(ended_name not in held_names and len(held_names) == N_HELD - 1 +
                       n_stored, f'the store holds {len(held_names)}: {held_names[:3]}...')
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



run(short_connections_stay_out_of_the_store)
