#!/usr/bin/env python3
"""The acceptor dies right after forking a child for a connection the fd store kept, before
it could tell echod: echod, which never heard of that child, sends the connection to the
next acceptor. The first child must not echo it too: a resumed connection's child waits
for echod's word that the connection is its own, and gives it back untouched when its
acceptor dies first. Three stored connections resumed, the acceptor killed after its first
fork (an LD_PRELOAD): each connection is then served by one child, and 256 KiB sent on each
in 1 KiB writes come back exactly, in order, once."""
import os
import socket

from echod_test import (ACCEPTOR_DIES_AFTER_FORK, Daemon, bound, expect, expect_same_stream,
                        listening_socket, preload, round_trip, run, skip, wait_until)

N = 3
PAYLOAD = 256 * 1024


def stored_connections(server):
        """N connections to @server, as the fd store would pass them: (name, server end),
        and the clients' ends."""
        clients, stored = [], []
        for i in range(N):
                clients.append(socket.create_connection(server.getsockname()[:2], bound(5)))
                conn, _ = server.accept()
                stored.append((f'echod-conn-77-{i + 1}', conn))
        return clients, stored


def each_resumed_connection_is_served_once():
        if not os.path.exists(ACCEPTOR_DIES_AFTER_FORK):
                skip('no acceptor-dies-after-fork library (ACCEPTOR_DIES_AFTER_FORK)')
        listener, server = listening_socket(), listening_socket()
        clients, stored = stored_connections(server)
        env = {'LD_PRELOAD': preload(ACCEPTOR_DIES_AFTER_FORK),
               'ECHOD_TEST_DIE_MARKER': '{tmp}/acceptor-died'}
        with Daemon(passed=[('echo.socket', listener)] + stored, fd_store=64,
                    env=env) as daemon:
                daemon.skip_without_subreaper()
                expect(wait_until(lambda: daemon.log_lines('acceptor was killed'), bound(5)),
                       'the acceptor did not die after its first fork')
                expect(wait_until(lambda: len(daemon.live_children()) == N, bound(5)),
                       f'{len(daemon.live_children())} connection processes, not {N}')
                payload = bytes(range(256)) * (PAYLOAD // 256)
                for i, sock in enumerate(clients):
                        got = round_trip(sock, payload)
                        expect_same_stream(payload, got, f'connection {i}')
                expect(wait_until(lambda: not daemon.children(), bound(5)),
                       f'connection processes left: {daemon.children()}')
        for sock in clients:
                sock.close()
        listener.close()
        server.close()


run(each_resumed_connection_is_served_once)
