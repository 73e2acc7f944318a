#!/usr/bin/env python3
"""Regression: the sketch took a failed read for "nothing to read yet" and went on polling a
dead connection at 100% CPU. Clients that reset (SO_LINGER 0) mid-echo, some with bytes still
owed to them and some with nothing pending, must make their children exit, not spin."""
import socket

from echod_test import (Daemon, bound, cpu_seconds, expect, expect_clean_exit, expect_echo,
                        reset, run, wait_until)

N_EACH = 5
# Enough to fill the child's buffer and the socket buffers of a client that never reads.
STUFF_BYTES = 8 << 20


def connect_stalled_reader(daemon):
        """A client that got one echo, then sends without reading until the daemon can take
        no more: bytes are owed to it."""
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.settimeout(bound(10))
        client.connect(daemon.address)
        expect_echo(client, b'start')
        client.setblocking(False)
        sent = 0
        while sent < STUFF_BYTES:
                try:
                        sent += client.send(b'\x55' * 65536)
                except BlockingIOError:
                        break
        return client


def connect_idle_client(daemon):
        """A client that got its echo and sends nothing more: nothing is owed to it."""
        client = daemon.connect()
        expect_echo(client, b'done')
        return client


def reset_connections_end_their_children():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                clients = [connect_stalled_reader(daemon) for _ in range(N_EACH)]
                clients += [connect_idle_client(daemon) for _ in range(N_EACH)]
                children = wait_until(lambda: len(daemon.live_children()) == len(clients) and
                                      daemon.live_children(), bound(5))
                expect(children, f'expected {len(clients)} children, saw '
                                 f'{daemon.live_children()}')
                cpu_before = {pid: cpu_seconds(pid) for pid in children}

                for client in clients:
                        reset(client)

                gone = wait_until(lambda: not daemon.children(), bound(5))
                left = daemon.live_children()
                burnt = {pid: round(cpu_seconds(pid) - cpu_before.get(pid, 0), 2)
                         for pid in left}
                expect(gone, f'{len(left)} children still running {bound(5)} s after their '
                             f'clients reset; CPU seconds each used since: {burnt}')
                with daemon.connect() as client:
                        expect_echo(client, b'still serving')
                expect_clean_exit(daemon)


run(reset_connections_end_their_children)
