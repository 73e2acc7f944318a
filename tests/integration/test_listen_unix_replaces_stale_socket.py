#!/usr/bin/env python3
"""--listen /PATH: a socket file left by an earlier run is replaced, and the new socket echoes."""
import os
import socket
import stat

from echod_test import Daemon, connect, expect, expect_clean_exit, expect_echo, run


def leave_stale_socket(path):
        """What a killed earlier instance leaves: a socket file nobody listens on."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as old:
                old.bind(path)
        expect(stat.S_ISSOCK(os.lstat(path).st_mode), f'could not leave a stale socket at {path}')
        try:
                connect(path).close()
                fail_to_connect = False
        except ConnectionRefusedError:
                fail_to_connect = True
        expect(fail_to_connect, f'the stale socket {path} accepted a connection')


def stale_unix_socket_is_replaced_and_echoes():
        daemon = Daemon(['--listen', '{tmp}/echo.sock'])
        leave_stale_socket(os.path.join(daemon.tmp, 'echo.sock'))

        with daemon:
                with daemon.connect() as client:
                        expect_echo(client, b'over AF_UNIX\0' + bytes(range(256)))
                expect_clean_exit(daemon)


run(stale_unix_socket_is_replaced_and_echoes)
