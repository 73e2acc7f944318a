#!/usr/bin/env python3
"""What systemd tells echod in its environment (NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID,
FDSTORE; LISTEN_* too) is echod's alone: the acceptor and the connections' processes, which
inherit the environment, see none of it, and so can neither pose as the service nor be
misled by it."""
from echod_test import Daemon, bound, expect, expect_echo, run

SYSTEMD_WORDS = ('NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'FDSTORE', 'LISTEN_FDS',
                 'LISTEN_PID', 'LISTEN_FDNAMES')


def environment(pid):
        with open(f'/proc/{pid}/environ', 'rb') as f:
                return {entry.split(b'=', 1)[0].decode(errors='replace')
                        for entry in f.read().split(b'\0') if entry}


def systemd_words_stay_with_echod():
        with Daemon(['--listen', '127.0.0.1:{port}'], fd_store=16,
                    watchdog_usec=10_000_000) as daemon:
                with daemon.connect(timeout=bound(5)) as sock:
                        expect_echo(sock, b'hello')
                        children = daemon.live_children()
                        expect(children, 'no connection process')
                        processes = [(daemon.acceptor(), 'the acceptor')] + \
                                    [(c, f'connection process {c}') for c in children]
                        for pid, what in processes:
                                seen = sorted(environment(pid) & set(SYSTEMD_WORDS))
                                expect(not seen, f'{what} inherits {seen}')


run(systemd_words_stay_with_echod)
