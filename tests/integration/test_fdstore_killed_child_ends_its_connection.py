#!/usr/bin/env python3
"""A stored connection whose child a signal kills while echod is not stopping (the OOM
killer, a crash, kill -9) ends: echod removes it from the store (FDSTOREREMOVE=1), PID 1
closes its copy, the last, and the client sees the end at once, instead of waiting on a
connection no one serves until the next restart. Its slot is free again; the other
connections go on."""
import os
import signal

from echod_test import (Daemon, bound, expect, expect_echo, is_closed_by_peer, run,
                        wait_until)


def killed_child_leaves_the_store():
        with Daemon(['--listen', '127.0.0.1:{port}'], fd_store=8) as daemon:
                victim = daemon.connect(timeout=bound(5))
                other = daemon.connect(timeout=bound(5))
                expect_echo(victim, b'victim')
                expect_echo(other, b'other')
                expect(wait_until(lambda: len(daemon.notify.held()) == 2, bound(2)),
                       'the two connections did not reach the store')
                port = victim.getsockname()[1]
                child = child_of(daemon, port)
                expect(child is not None, 'no child serves the victim\'s connection')

                os.kill(child, signal.SIGKILL)

                expect(wait_until(lambda: is_closed_by_peer(victim), bound(3)),
                       'the killed child\'s client still waits on its connection')
                names = [name for name, _ in daemon.notify.held()]
                expect(len(names) == 1, f'the store holds {len(names)} connections, not 1')
                expect(daemon.notify.count('FDSTOREREMOVE') == 1, 'no FDSTOREREMOVE=1 sent')
                expect_echo(other, b'other goes on')


def child_of(daemon, port):
        """The child holding the connection from local port @port (from /proc)."""
        inode = None
        with open('/proc/net/tcp') as f:
                for line in f.readlines()[1:]:
                        fields = line.split()
                        if int(fields[2].split(':')[1], 16) == port:
                                inode = fields[9]
        for pid in daemon.live_children():
                for fd in os.listdir(f'/proc/{pid}/fd'):
                        try:
                                if os.readlink(f'/proc/{pid}/fd/{fd}') == f'socket:[{inode}]':
                                        return pid
                        except OSError:
                                pass
        return None


run(killed_child_leaves_the_store)
