#!/usr/bin/env python3
"""A socket systemd passes that echod cannot serve (SOCK_SEQPACKET, via systemd-socket-activate
--seqpacket): exit status 1 with one line saying what the socket is."""
import os
import socket

from echod_test import Daemon, bound, expect, run


def seqpacket_socket_is_refused():
        with Daemon(activate='{tmp}/seqpacket.sock', socket_type='seqpacket',
                    notify=False) as ssa:
                # The first connection is what makes systemd-socket-activate start the daemon.
                with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as client:
                        client.connect(os.path.join(ssa.tmp, 'seqpacket.sock'))
                        status = ssa.wait_exit(bound(10))

                expect(status == 1, f'expected exit status 1, got {status}')
                lines = ssa.log_lines()
                expect(len(lines) == 1 and 'neither a stream nor a datagram socket' in lines[0],
                       f'expected one line saying what the socket is, got {lines}')


run(seqpacket_socket_is_refused)
