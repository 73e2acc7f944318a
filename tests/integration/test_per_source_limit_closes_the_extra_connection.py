#!/usr/bin/env python3
"""--max-connections-per-source 2: a third connection from 127.0.0.1 is closed at once, without
an echo, while a client from 127.0.0.2 is served; STATUS counts it as refused and the notice
names the address. Once one of the two leaves, 127.0.0.1 is served again."""
from echod_test import Daemon, expect, expect_clean_exit, expect_echo, refused_at_once, run


def extra_connection_from_one_address_is_closed():
        with Daemon(['--listen', '127.0.0.1:{port}', '--max-connections-per-source', '2']) \
                        as daemon:
                first = daemon.connect(source='127.0.0.1')
                second = daemon.connect(source='127.0.0.1')
                expect_echo(first, b'first')
                expect_echo(second, b'second')

                with daemon.connect(source='127.0.0.1') as third:
                        third.sendall(b'one too many')
                        verdict = refused_at_once(third)
                        expect(verdict is True, f'the third connection from 127.0.0.1: '
                                                f'expected it closed at once, but {verdict}')
                with daemon.connect(source='127.0.0.2') as other:
                        expect_echo(other, b'another address', what='the client from 127.0.0.2')
                        daemon.expect_status('3 active, 3 total connections, 1 refused')
                expect_echo(first, b'the first two are untouched')
                notice = daemon.log_lines('per-source limit')
                expect(len(notice) == 1 and notice[0].startswith('echod: 127.0.0.1 already holds '
                                                                 '2 connections'),
                       f'expected one notice naming 127.0.0.1, saw {daemon.log_lines()}')

                first.close()
                daemon.expect_status('1 active, 3 total connections, 1 refused')
                with daemon.connect(source='127.0.0.1') as again:
                        expect_echo(again, b'room again', what='127.0.0.1 after one left')
                second.close()
                daemon.expect_status('0 active, 4 total connections, 1 refused')
                expect(not daemon.children(), f'children left: {daemon.children()}')
                expect_clean_exit(daemon)


run(extra_connection_from_one_address_is_closed)
