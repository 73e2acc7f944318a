#!/usr/bin/env python3
"""With an fd store: connections opened a moment before a SIGTERM (too young to be stored
yet) go into the store at the SIGTERM, before their children are told to stop; the children
write back what they read and hand over, leaving each connection open for the next instance
(here the test, holding the stored copies, stands in for it): no byte lost, none twice."""
import signal

from echod_test import (Daemon, bound, expect, expect_echo, peer_has_closed, recv_exactly,
                        run)

N = 20


def young_connections_are_stored_at_sigterm():
        with Daemon(['--listen', '127.0.0.1:{port}'], fd_store=64) as daemon:
                clients = [daemon.connect(timeout=bound(5)) for _ in range(N)]
                for i, sock in enumerate(clients):
                        expect_echo(sock, b'before %d;' % i)
                # echod hears of each connection from the acceptor: once it has heard of
                # all of them (a connection whose news is still on its way at the SIGTERM
                # is stored once it comes, after STOPPING=1; slow under ASan, CI saw it).
                daemon.expect_status(f'{N} active, {N} total connections')
                daemon.announce_stop()    # a restart, as ExecStop= says
                daemon.signal(signal.SIGTERM)
                status = daemon.wait_exit(bound(5))
                expect(status == 0, f'expected exit status 0, got {status}')
                stored = [fd for _, fds in daemon.notify.stored() for fd in fds]
                expect(len(stored) == N, f'expected {N} connections stored at SIGTERM, got '
                                         f'{len(stored)}')
                stopping = [i for i, m in enumerate(daemon.notify.messages)
                            if m.get('STOPPING') == '1']
                first_store = min(i for i, m in enumerate(daemon.notify.messages)
                                  if m.get('FDSTORE') == '1')
                expect(stopping and first_store < stopping[0],
                       'the connections were stored after STOPPING=1')

                # What each client sends now waits in its connection for the next instance.
                by_port = {fd.getpeername()[1]: fd for fd in stored}
                for i, sock in enumerate(clients):
                        expect(not peer_has_closed(sock), f'client {i}: its connection was closed')
                        sock.sendall(b'after %d' % i)
                        copy = by_port.get(sock.getsockname()[1])
                        expect(copy is not None, f'client {i}: its connection is not stored')
                        copy.settimeout(bound(5))
                        got = recv_exactly(copy, len(b'after %d' % i),
                                           what='bytes sent after the hand-over')
                        expect(got == b'after %d' % i, f'client {i}: the next instance would '
                                                       f'read {got!r}')
                        sock.close()


run(young_connections_are_stored_at_sigterm)
