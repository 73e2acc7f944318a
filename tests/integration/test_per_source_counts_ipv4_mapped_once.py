#!/usr/bin/env python3
"""--max-connections-per-source 1 on a dual-stack bare port and an IPv4 socket: 127.0.0.1 is
one source however it arrives, over IPv4 (seen as ::ffff:127.0.0.1 on the dual-stack socket),
over an AF_INET6 socket to [::ffff:127.0.0.1], or on the IPv4 socket (seen as plain
127.0.0.1), so the second and third are refused; ::1 is another source and is served. After
the first leaves, a new connection from 127.0.0.1 is accepted."""
import socket

from echod_test import (Daemon, bound, expect, expect_clean_exit, expect_echo, free_port,
                        refused_at_once, run)


def connect6(host, port):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(bound(10))
        s.connect((host, port))
        return s


def expect_refused(sock, what):
        with sock:
                sock.sendall(b'same source')
                verdict = refused_at_once(sock)
                expect(verdict is True, f'{what}: expected it closed at once, but {verdict}')


def one_source_however_it_arrives():
        ipv4_port = free_port()
        with Daemon(['--listen', '{port}', '--listen', f'127.0.0.1:{ipv4_port}',
                     '--max-connections-per-source', '1']) as daemon:
                first = daemon.connect(('127.0.0.1', daemon.port))
                expect_echo(first, b'over IPv4 to the dual-stack port')

                expect_refused(connect6('::ffff:127.0.0.1', daemon.port),
                               'AF_INET6 to [::ffff:127.0.0.1] on the dual-stack port')
                expect_refused(daemon.connect(('127.0.0.1', ipv4_port)),
                               'IPv4 to the IPv4-only port')
                with connect6('::1', daemon.port) as other:
                        expect_echo(other, b'::1 is another source', what='the client from ::1')
                        daemon.expect_status('2 active, 2 total connections, 2 refused')
                notices = daemon.log_lines('per-source limit')
                expect(notices and all('127.0.0.1 already holds 1 connection,' in line
                                       for line in notices),
                       f'expected the notice to name 127.0.0.1 plainly, saw {notices}')

                first.close()
                daemon.expect_status('0 active, 2 total connections, 2 refused')
                with connect6('::ffff:127.0.0.1', daemon.port) as again:
                        expect_echo(again, b'accepted again', what='127.0.0.1 after it left')
                daemon.expect_status('0 active, 3 total connections, 2 refused')
                expect_clean_exit(daemon)


run(one_source_however_it_arrives)
