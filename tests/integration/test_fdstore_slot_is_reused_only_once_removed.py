#!/usr/bin/env python3
"""A store of 5 fds (FDSTORE=5; the notify socket, like PID 1, closes every fd sent past
that), and 5 connections in it. 3 of them end; 3 new ones take their slots only after
echod has told PID 1 to let the ended ones go (FDSTOREREMOVE=1, read before any later
store): none is refused. At the SIGTERM all 5 live connections are handed over, each open
and in the store, its client's later bytes waiting there for the next instance. (echod used
to count a slot free when it reaped the child, while PID 1 still held the ended connection:
the new ones were refused, their children handed over connections no one kept, and those
clients lost what they had sent.)"""
import signal

from echod_test import (Daemon, bound, expect, expect_echo, expect_eof, peer_has_closed,
                        recv_exactly, run, wait_until)

SIZE = 5


def new_connections_take_only_freed_slots():
        with Daemon(['--listen', '127.0.0.1:{port}'], fd_store=SIZE, store_max=SIZE) as daemon:
                first = [daemon.connect(timeout=bound(5)) for _ in range(SIZE)]
                for i, sock in enumerate(first):
                        expect_echo(sock, b'first %d' % i)
                expect(wait_until(lambda: len(daemon.notify.held()) == SIZE, bound(2)),
                       f'{len(daemon.notify.held())} of {SIZE} in the store')
                for sock in first[:3]:
                        sock.shutdown(1)
                        expect_eof(sock)
                        sock.close()
                second = [daemon.connect(timeout=bound(5)) for _ in range(3)]
                for i, sock in enumerate(second):
                        expect_echo(sock, b'second %d' % i)
                live = first[3:] + second
                ports = {sock.getsockname()[1] for sock in live}
                wait_until(lambda: held_ports(daemon) == ports, bound(3))
                expect(daemon.notify.refused == 0,
                       f'the store refused {daemon.notify.refused} fds sent past its size')
                expect(held_ports(daemon) == ports, 'the store holds other connections than '
                                                    'the live ones')

                daemon.announce_stop()    # a restart, as ExecStop= says
                daemon.signal(signal.SIGTERM)
                expect(daemon.wait_exit(bound(5)) == 0, 'echod did not exit 0')
                copies = {peer_port(sock): sock for _, sock in daemon.notify.held()}
                for i, sock in enumerate(live):
                        expect(not peer_has_closed(sock), f'live client {i}: connection closed')
                        sock.sendall(b'later %d' % i)
                        copy = copies.get(sock.getsockname()[1])
                        expect(copy is not None, f'live client {i}: not in the store')
                        got = recv_exactly(copy, len(b'later %d' % i), timeout=bound(5),
                                           what='bytes for the next instance')
                        expect(got == b'later %d' % i, f'live client {i}: {got!r}')
                        sock.close()


def held_ports(daemon):
        """The client ports of the connections the store holds; None for an ended one."""
        return {peer_port(sock) for _, sock in daemon.notify.held()}


def peer_port(sock):
        try:
                return sock.getpeername()[1]
        except OSError:
                return None


run(new_connections_take_only_freed_slots)
