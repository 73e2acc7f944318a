#!/usr/bin/env python3
"""Three abusive clients, --idle-timeout 2: one floods without ever reading its echo, one
connects and says nothing, one trickles a byte every 3 s. Each holds one child, no more, and
each is closed by the idle timeout; meanwhile the parent, which never reads a client's bytes,
only ever waits in poll(2), stays nearly idle, and a fresh client is served within 1 s."""
import threading
import time

from echod_test import (Daemon, bound, expect, expect_clean_exit, expect_echo, flood, garbage,
                        peer_has_closed, run, waits_only_in_poll, wait_until)

IDLE_SECONDS = 2
TRICKLE_SECONDS = 3.0
FLOOD_BYTES = 64 << 20
N_FRESH = 4
MAX_CPU_SECONDS = 0.5


def trickle(sock, result):
        """A byte, then a pause longer than the idle timeout, until the server closes."""
        for i in range(5):
                if peer_has_closed(sock):
                        result['bytes'] = i
                        return
                try:
                        sock.sendall(b'.')
                except OSError:
                        result['bytes'] = i
                        return
                time.sleep(TRICKLE_SECONDS)
        result['bytes'] = None


def abusers_are_bounded_and_others_served():
        with Daemon(['--listen', '127.0.0.1:{port}', '--idle-timeout', str(IDLE_SECONDS)]) \
                        as daemon:
                silent, flooder, trickler = daemon.connect(), daemon.connect(), daemon.connect()
                flooded, trickled = {}, {}
                abusers = [
                        threading.Thread(target=lambda: flooded.update(result=flood(
                                flooder, FLOOD_BYTES, bound(20)))),
                        threading.Thread(target=trickle, args=(trickler, trickled)),
                ]
                for t in abusers:
                        t.start()
                wait_until(lambda: len(daemon.live_children()) >= 3, bound(5))
                expect(len(daemon.live_children()) == 3,
                       f'expected one child per abuser, 3, saw {daemon.live_children()}')

                cpu_before = daemon.cpu_seconds()
                blocked = []
                for i in range(N_FRESH):
                        started = time.monotonic()
                        with daemon.connect() as fresh:
                                expect_echo(fresh, garbage(1024), what=f'fresh client {i}')
                        elapsed = time.monotonic() - started
                        expect(elapsed < bound(1), f'fresh client {i} served in {elapsed:.2f} s '
                                                   'while the abusers were connected')
                        for _ in range(10):
                                if (why := waits_only_in_poll(daemon.pid)) is not None:
                                        blocked.append(why)
                                time.sleep(0.02)
                still_connected = [name for name, sock in (('silent', silent),
                                                           ('trickler', trickler))
                                   if not peer_has_closed(sock)]
                cpu_used = daemon.cpu_seconds() - cpu_before
                expect(not blocked, f'the parent waited elsewhere than in poll: {blocked}')
                expect(cpu_used < MAX_CPU_SECONDS,
                       f'the parent used {cpu_used:.2f} s of CPU beside the abusers')
                expect(still_connected, 'the abusers were closed before the fresh clients '
                                        'came: nothing was tested meanwhile')

                expect(wait_until(lambda: peer_has_closed(silent), bound(IDLE_SECONDS + 5)),
                       'the silent client was not closed by the idle timeout')
                for t in abusers:
                        t.join(bound(30))
                sent, error = flooded.get('result', (0, None))
                expect(error is not None or peer_has_closed(flooder),
                       f'the flooder is still connected after sending {sent} bytes')
                expect(sent < FLOOD_BYTES, f'the daemon took all {sent} bytes of a client that '
                                           'never read its echo')
                expect(trickled.get('bytes') == 1,
                       f'expected the trickler closed after its first byte, at the idle timeout, '
                       f'it sent {trickled.get("bytes")} bytes first')

                expect(wait_until(lambda: not daemon.children(), bound(5)),
                       f'children left after the abusers were closed: {daemon.children()}')
                daemon.expect_status(f'0 active, {3 + N_FRESH} total connections')
                for sock in (silent, flooder, trickler):
                        sock.close()
                expect_clean_exit(daemon)


run(abusers_are_bounded_and_others_served)
