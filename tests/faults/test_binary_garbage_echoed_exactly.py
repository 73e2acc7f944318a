#!/usr/bin/env python3
"""Binary garbage is data: every byte value (NUL, 0xff, CR, LF, telnet's IAC sequences, ...)
in a pattern of all 256 values, long runs of NUL and of 0xff, and random bytes, sent in one
piece or in odd-sized writes, comes back exactly over IPv4, IPv6 and AF_UNIX; datagrams of
the same come back whole; the daemon stays idle and serving."""
import os
import socket
import threading

from echod_test import (Daemon, bound, datagram_socket, expect, expect_clean_exit,
                        expect_datagram_echo, expect_same_stream, expect_still_serving, run)

PAYLOADS = {
        'all 256 byte values, 64 times': bytes(range(256)) * 64,
        '70000 NUL bytes': b'\0' * 70000,
        '70000 0xff bytes': b'\xff' * 70000,
        'telnet IAC IP, IAC DO, CR NUL, ^D, ^Z': b'\xff\xf4\xff\xfd\x06\r\0\x04\x1a\r\n' * 100,
        '1 MiB of random bytes': os.urandom(1 << 20),
        'a single NUL': b'\0',
}
# Odd write sizes, so that the pattern straddles every read the daemon makes.
ODD_WRITES = (1, 3, 7, 255, 256, 257, 4093, 65537)
MAX_CPU_SECONDS = 2.0


def send_in_odd_writes(sock, payload):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        i, n = 0, 0
        while i < len(payload):
                size = ODD_WRITES[n % len(ODD_WRITES)]
                sock.sendall(payload[i:i + size])
                i, n = i + size, n + 1
        sock.shutdown(socket.SHUT_WR)


def echo_of(sock, payload, odd_writes):
        """Sends @payload (from a thread) and half-closes; returns what came back up to end of
        stream."""
        sender = threading.Thread(target=send_in_odd_writes if odd_writes else
                                  lambda s, p: (s.sendall(p), s.shutdown(socket.SHUT_WR)),
                                  args=(sock, payload), daemon=True)
        sender.start()
        received = bytearray()
        sock.settimeout(bound(30))
        while chunk := sock.recv(1 << 20):
                received += chunk
        sender.join(bound(30))
        return bytes(received)


def garbage_comes_back_exactly():
        with Daemon(['--listen', '127.0.0.1:{port}', '--listen', '[::1]:{port}',
                     '--listen', '{tmp}/echo.sock',
                     '--listen-datagram', '127.0.0.1:{port}']) as daemon:
                cpu_before = daemon.cpu_seconds()
                targets = {'IPv4': ('127.0.0.1', daemon.port), 'IPv6': ('::1', daemon.port),
                           'AF_UNIX': os.path.join(daemon.tmp, 'echo.sock')}
                for transport, address in targets.items():
                        for name, payload in PAYLOADS.items():
                                for odd in (False, True):
                                        if odd and transport == 'AF_UNIX':
                                                continue        # no TCP_NODELAY there
                                        what = (f'{name} over {transport}'
                                                f'{" in odd-sized writes" if odd else ""}')
                                        with daemon.connect(address) as client:
                                                expect_same_stream(payload,
                                                                   echo_of(client, payload, odd),
                                                                   what)
                with datagram_socket('127.0.0.1') as client:
                        for size in (1, 256, 1472, 65507):
                                payload = (bytes(range(256)) * 256)[:size]
                                expect_datagram_echo(client, payload, ('127.0.0.1', daemon.port),
                                                     f'a {size}-byte datagram of every value')
                        expect_datagram_echo(client, b'\0' * 1000, ('127.0.0.1', daemon.port),
                                             'a datagram of NUL bytes')
                cpu_used = daemon.cpu_seconds() - cpu_before
                expect(cpu_used < MAX_CPU_SECONDS, f'the parent used {cpu_used:.2f} s of CPU')
                expect_still_serving(daemon, 'after the garbage')
                expect_clean_exit(daemon)


run(garbage_comes_back_exactly)
