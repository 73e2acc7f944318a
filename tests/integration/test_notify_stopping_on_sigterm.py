#!/usr/bin/env python3
"""NOTIFY_SOCKET: SIGTERM makes the daemon say STOPPING=1 (with a status saying so), then
exit 0."""
import signal

from echod_test import Daemon, bound, expect, expect_echo, run


def sigterm_sends_stopping():
        with Daemon(['--listen', '127.0.0.1:{port}']) as daemon:
                with daemon.connect() as client:
                        expect_echo(client, b'one connection')
                daemon.signal(signal.SIGTERM)
                seen = daemon.notify.wait_for(lambda m: m.get('STOPPING') == '1', bound(5))
                expect(seen is not None, f'expected STOPPING=1 after SIGTERM, saw '
                                         f'{daemon.notify.messages}')
                status = daemon.notify.messages[seen].get('STATUS', '')
                expect(status.endswith(', stopping'),
                       f'expected the STATUS sent with STOPPING=1 to say stopping: {status!r}')
                expect(daemon.wait_exit(bound(10)) == 0,
                       f'expected exit status 0, got {daemon.returncode}')


run(sigterm_sends_stopping)
