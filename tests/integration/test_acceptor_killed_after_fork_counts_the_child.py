#!/usr/bin/env python3
"""The acceptor dies right after forking a child for a new connection, before it could tell
echod: the child, echod's now, goes on echoing, and echod, which looks for such children
when an acceptor dies, counts it (STATUS: 2 active once a second client is served by the
next acceptor), stops it with the rest at SIGTERM (its client gets the end of the stream),
and waits for it before it exits 0."""
import os
import signal

from echod_test import (ACCEPTOR_DIES_AFTER_FORK, Daemon, bound, expect, expect_echo,
                        expect_eof, preload, run, skip, wait_until)


def an_unannounced_child_is_counted():
        if not os.path.exists(ACCEPTOR_DIES_AFTER_FORK):
                skip('no acceptor-dies-after-fork library (ACCEPTOR_DIES_AFTER_FORK)')
        env = {'LD_PRELOAD': preload(ACCEPTOR_DIES_AFTER_FORK),
               'ECHOD_TEST_DIE_MARKER': '{tmp}/acceptor-died'}
        with Daemon(['--listen', '127.0.0.1:{port}'], env=env) as daemon:
                daemon.skip_without_subreaper()
                first = daemon.connect(timeout=bound(5))
                expect_echo(first, b'served by a child echod never heard of')
                expect(wait_until(lambda: daemon.log_lines('acceptor was killed'), bound(5)),
                       'the acceptor did not die after its first fork')
                second = daemon.connect(timeout=bound(5))
                expect_echo(second, b'served by the next acceptor')
                daemon.expect_status('2 active, 2 total connections')

                daemon.signal(signal.SIGTERM)
                for i, sock in enumerate((first, second)):
                        expect_eof(sock, timeout=bound(5), what=f'connection {i}')
                expect(daemon.wait_exit(bound(5)) == 0, 'echod did not exit 0')
                expect(not daemon.survivors(), f'left running: {daemon.survivors()}')


run(an_unannounced_child_is_counted)
