#!/usr/bin/env python3
"""PID 1 too busy to read its notify socket: once its queue is full, every message echod
sends there would wait. echod never waits for it: with the queue full (14 connections to
store, opened 0.3 s apart: more messages than the kernel queues, as one message stored
many at once before), new clients are still accepted and echoed,
datagrams still echoed, ended children still reaped; once PID 1 reads again, echod stores
what it could not, and STATUS catches up. (echod used to wait in sd_notify(): accepting,
reaping and UDP stopped with it.)"""
import time

from echod_test import (Daemon, bound, datagram_socket, expect, expect_clean_exit,
                        expect_datagram_echo, expect_echo, run, wait_until)

N_HELD = 14
N_NEW = 10


def a_stalled_notify_socket_stalls_nothing():
        with Daemon(['--listen', '127.0.0.1:{port}', '--listen-datagram', '127.0.0.1:{port}'],
                    fd_store=64) as daemon:
                daemon.notify.stall()
                held = []
                for i in range(N_HELD):
                        held.append(daemon.connect(timeout=bound(5)))
                        expect_echo(held[-1], b'held %d' % i)
                        time.sleep(0.3)         # a flush apart
                time.sleep(0.6)                 # all due for the store: the queue is full

                for i in range(N_NEW):
                        with daemon.connect(timeout=bound(5)) as sock:
                                expect_echo(sock, b'new %d' % i)
                with datagram_socket('127.0.0.1') as client:
                        expect_datagram_echo(client, b'a datagram', ('127.0.0.1', daemon.port))
                expect(wait_until(lambda: not daemon.zombies() and
                                  len(daemon.live_children()) == N_HELD, bound(3)),
                       f'children not reaped: {len(daemon.zombies())} zombies, '
                       f'{len(daemon.live_children())} live, {N_HELD} expected')

                daemon.notify.resume()
                expect(wait_until(lambda: len(daemon.notify.held()) == N_HELD, bound(3)),
                       f'{len(daemon.notify.held())} of {N_HELD} stored once PID 1 read again')
                daemon.expect_status(f'{N_HELD} active, {N_HELD + N_NEW} total connections, '
                                     '1 datagrams echoed, 0 dropped')
                for sock in held:
                        sock.close()
                expect_clean_exit(daemon)


run(a_stalled_notify_socket_stalls_nothing)
