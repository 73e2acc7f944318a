#!/usr/bin/env python3
"""SIGTERM with connections open: every byte the daemon read before is still echoed, each
client then sees a clean end of stream, the daemon exits 0 and none of its children is left."""
import random
import signal
import socket

from echod_test import (Daemon, bound, expect, expect_eof, recv_exactly, run, still_running,
                        snapshot, unread_by_peer, wait_until)


def sigterm_returns_what_was_read_then_closes():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                # arrange: three clients whose bytes the daemon has read, one of them
                # through a tiny receive buffer so that its echo cannot all be delivered yet
                slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                slow.settimeout(bound(10))
                slow.connect(daemon.address)
                clients = [slow, daemon.connect(), daemon.connect()]
                messages = [random.randbytes(60 << 10), b'second client\n', b'third\0client']
                for client, message in zip(clients, messages):
                        client.sendall(message)
                everything_read = wait_until(
                        lambda: all(unread_by_peer(c) == 0 for c in clients) and
                        len(daemon.live_children()) == len(clients), bound(5))
                expect(everything_read, f'the daemon did not read what was sent: '
                                        f'{[unread_by_peer(c) for c in clients]} bytes unread')
                children = snapshot(daemon.live_children())

                # act
                daemon.signal(signal.SIGTERM)

                # assert
                for i, (client, message) in enumerate(zip(clients, messages)):
                        echoed = recv_exactly(client, len(message), what=f'client {i}')
                        expect(echoed == message, f'client {i}: the echo differs')
                        expect_eof(client, bound(5), f'client {i}')
                        client.close()
                status = daemon.wait_exit(bound(10))
                expect(status == 0, f'expected exit status 0 after SIGTERM, got {status}')
                left = wait_until(lambda: not still_running(children), bound(5))
                expect(left, f'children still running: {still_running(children)}')


run(sigterm_returns_what_was_read_then_closes)
