#!/usr/bin/env python3
"""SIGTERM while a client streams without a pause, reading its echo as it comes: it sees the
child's FIN only once it has read the echo before it, and sends until then, as a client that
stops at end of stream does. The child must not close before the client has stopped: its
close would answer the client's next bytes with a reset, and the client would see its
connection reset, not ended. Every byte the child wrote back (its report at debug level)
reaches the client, then the end of stream, and no send of the client's fails."""
import re
import select
import signal
import time

from echod_test import Daemon, bound, expect, garbage, run, wait_until

CHUNK = 16384
WINDOW = 256 * 1024             # sent and not echoed yet, at most
SIGTERM_AFTER_SECONDS = 0.5


def streaming_client_sees_every_byte_then_eof():
        with Daemon(['--listen', '127.0.0.1:{port}', '--log-level', 'debug']) as daemon:
                client = daemon.connect()
                client.setblocking(False)
                sent, received, how = bytearray(), bytearray(), None
                # The clock starts at the first echo: a connection still in the
                # backlog when a standalone echod closes its listener is reset
                # (slow under valgrind on a busy machine), and is not what this
                # test is about.
                echoing_since, stopped = None, False
                deadline = time.monotonic() + bound(15)
                while how is None and time.monotonic() < deadline:
                        if not stopped and echoing_since is not None and \
                           time.monotonic() - echoing_since > SIGTERM_AFTER_SECONDS:
                                daemon.signal(signal.SIGTERM)
                                stopped = True
                        want_out = len(sent) - len(received) < WINDOW
                        readable, writable, _ = select.select(
                                [client], [client] if want_out else [], [], 0.1)
                        if writable:
                                chunk = garbage(CHUNK)
                                try:
                                        sent += chunk[:client.send(chunk)]
                                except BlockingIOError:
                                        pass
                                except OSError as e:
                                        how = f'a failed send ({e})'
                        if readable and how is None:
                                try:
                                        chunk = client.recv(65536)
                                except OSError as e:
                                        how = f'a failed receive ({e})'
                                        break
                                if not chunk:
                                        how = 'eof'
                                elif echoing_since is None:
                                        echoing_since = time.monotonic()
                                received += chunk
                                time.sleep(0.001)       # a little slower than echod
                expect(stopped, f'no echo within {bound(15)} s: SIGTERM never sent')
                expect(daemon.wait_exit(bound(15)) == 0, 'the daemon did not exit 0')
                expect(how == 'eof', f'the client saw {how}, not the end of stream, after '
                                     f'{len(received)} of {len(sent)} bytes')
                expect(bytes(received) == bytes(sent[:len(received)]),
                       'what came back is not a prefix of what was sent')
                closed = wait_until(lambda: daemon.log_lines(' closed'), bound(5))
                written = [int(m.group(1)) for line in closed
                           if (m := re.search(r'closed.* after (\d+) bytes', line))]
                expect(written == [len(received)], f'the child wrote back {written} bytes, '
                                                   f'the client received {len(received)}')
                client.close()


run(streaming_client_sees_every_byte_then_eof)
