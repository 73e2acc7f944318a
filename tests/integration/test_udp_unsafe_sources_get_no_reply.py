#!/usr/bin/env python3
"""The reflection guard: a datagram from a source port below 1024 (IPv4 or IPv6), or from
port 0, gets no reply, is counted as dropped in STATUS, and is logged at most once a second,
saying that more were held back; a datagram from an ordinary port is still echoed. (Port 0 is
sent from a raw socket, as a spoofer would.)"""
import socket
import struct
import time

from echod_test import (Daemon, attempts_logged, bound, datagram_socket, expect,
                        expect_clean_exit, expect_datagram_echo, privileged_datagram_socket, run,
                        skip, wait_until)

N_FLOOD = 100


def send_from_port_zero(port, payload):
        try:
                raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        except PermissionError:
                skip('a raw socket needs root (CAP_NET_RAW)')
        with raw:
                header = struct.pack('!HHHH', 0, port, 8 + len(payload), 0)  # no checksum
                raw.sendto(header + payload, ('127.0.0.1', 0))


def expect_nothing_came(sock, what):
        """Called once a later datagram on the same daemon socket was answered: anything the
        daemon was going to send @sock has arrived by then."""
        sock.setblocking(False)
        try:
                data = sock.recv(65536)
        except BlockingIOError:
                return
        finally:
                sock.setblocking(True)
        expect(False, f'{what}: got a {len(data)}-byte reply')


def unsafe_sources_are_dropped_and_counted():
        with Daemon(['--listen-datagram', '127.0.0.1:{port}',
                     '--listen-datagram', '[::1]:{port}']) as daemon:
                v4, v6 = ('127.0.0.1', daemon.port), ('::1', daemon.port)
                with privileged_datagram_socket('127.0.0.1') as low, \
                     privileged_datagram_socket('::1') as low6, \
                     datagram_socket('127.0.0.1') as safe:
                        low_port = low.getsockname()[1]

                        # The daemon answers its socket's datagrams in order: once the safe
                        # one is back, the unsafe one before it was judged.
                        low.sendto(b'reflect me', v4)
                        expect_datagram_echo(safe, b'ordinary port', v4)
                        expect_nothing_came(low, f'a datagram from port {low_port}')
                        # Logged after the batch of datagrams it was in: maybe after the reply.
                        dropped = wait_until(lambda: daemon.log_lines('dropped'), bound(5))
                        expect(len(dropped) == 1 and f'127.0.0.1:{low_port}' in dropped[0] and
                               'unsafe source' in dropped[0],
                               f'expected one line naming the dropped datagram, saw {dropped}')

                        for i in range(N_FLOOD):
                                low.sendto(f'flood {i}'.encode(), v4)
                        low6.sendto(b'reflect me over IPv6', v6)
                        expect_datagram_echo(safe, b'still answered', v4)
                        with datagram_socket('::1') as safe6:
                                expect_datagram_echo(safe6, b'still answered', v6)
                        expect_nothing_came(low, f'{N_FLOOD} datagrams from port {low_port}')
                        expect_nothing_came(low6, 'a datagram from [::1] below port 1024')

                        time.sleep(1.1)         # past the rate limit: the next drop is logged
                        send_from_port_zero(daemon.port, b'from port 0')
                        expect_datagram_echo(safe, b'and after port 0', v4)
                        wait_until(lambda: daemon.log_lines('127.0.0.1:0 dropped'), bound(5))

                n_dropped = 1 + N_FLOOD + 1 + 1
                daemon.expect_status(f'0 active, 0 total connections, 4 datagrams echoed, '
                                     f'{n_dropped} dropped')
                dropped = daemon.log_lines('dropped')
                expect(len(dropped) <= 3, f'expected the drops logged at most once a second, '
                                          f'got {len(dropped)} lines: {dropped}')
                expect('127.0.0.1:0 dropped' in dropped[-1],
                       f'expected the port 0 datagram logged last, saw {dropped}')
                # A wake-up of the socket that dropped several datagrams logs one of them, so
                # the lines may stand for fewer drops than STATUS counts, never more.
                expect(1 < attempts_logged(dropped) <= n_dropped and 'suppressed' in dropped[-1],
                       f'expected the last line to say how many were held back, saw {dropped}')
                expect_clean_exit(daemon)


run(unsafe_sources_are_dropped_and_counted)
