#!/usr/bin/env python3
"""Where close_range(2) fails (a kernel before 5.9, or a seccomp filter that refuses it: here
one that makes it fail with ENOSYS), each child still closes every fd it inherits and does
not need: it keeps its own connection and its signalfd, and none of the parent's sockets,
neither the listener nor another client's connection (the parent holds a copy of each
young one, with an fd store), which a child's copy would keep open after its own child
ended."""
import os

from echod_test import (WITHOUT_SYSCALL, Daemon, bound, expect, expect_echo, run,
                        skip_without_seccomp_helper, wait_until)


def children_keep_only_their_own_fds():
        skip_without_seccomp_helper('close_range')
        with Daemon(['--listen', '127.0.0.1:{port}'], fd_store=16,
                    under=[WITHOUT_SYSCALL, 'close_range']) as daemon:
                first = daemon.connect(timeout=bound(5))
                expect_echo(first, b'first')
                second = daemon.connect(timeout=bound(5))
                expect_echo(second, b'second')
                expect(wait_until(lambda: len(daemon.live_children()) == 2, bound(3)),
                       'expected two children')
                children = daemon.live_children()
                for pid in children:
                        own = sockets_of(pid)
                        others = set().union(*(sockets_of(c) for c in children if c != pid))
                        expect(len(own) == 1 and not own & others,
                               f'child {pid} holds {len(own)} sockets, {len(own & others)} of '
                               f'them another child\'s connection (the listener makes one '
                               f'more): {fds_of(pid)}')
                first.close()
                second.close()


def fds_of(pid):
        links = {}
        for fd in os.listdir(f'/proc/{pid}/fd'):
                try:
                        links[int(fd)] = os.readlink(f'/proc/{pid}/fd/{fd}')
                except OSError:
                        pass
        return links


def sockets_of(pid):
        return {link for link in fds_of(pid).values() if link.startswith('socket:')}


run(children_keep_only_their_own_fds)
