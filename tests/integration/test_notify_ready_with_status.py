#!/usr/bin/env python3
"""NOTIFY_SOCKET: once listening, the daemon says READY=1 with the status of an idle server."""
from echod_test import Daemon, expect, expect_clean_exit, expect_echo, run


def ready_comes_with_idle_status():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                first = daemon.notify.messages[0]
                expect(first.get('READY') == '1', f'expected READY=1 first, got {first}')
                expect(first.get('STATUS') == '0 active, 0 total connections',
                       f'expected STATUS=0 active, 0 total connections with READY=1, '
                       f'got {first}')
                with daemon.connect() as client:
                        expect_echo(client, b'ready means serving')
                expect_clean_exit(daemon)


run(ready_comes_with_idle_status)
