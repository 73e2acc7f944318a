#!/usr/bin/env python3
"""SIGTERM while a well-behaved client still sends, and reads its echo more slowly than it
sends, so TCP flow control holds the child's replies back. The child stops reading, writes
back what it read and closes: every byte it wrote back (the BYTES it reports, logged at debug
as "closed after N bytes") must reach the client before the end of stream. A socket closed
with unread input sends an RST, and the kernel then drops the replies it has not sent yet."""
import re
import signal
import socket
import threading
import time

from echod_test import Daemon, bound, expect, garbage, run, wait_until

PAYLOAD_BYTES = 16 << 20
READ_CHUNK = 16384
READ_PAUSE_SECONDS = 0.005
SIGTERM_AFTER_SECONDS = 0.5


def send_all_then_half_close(sock, data):
        try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
        except OSError:
                pass    # the child stopped reading and closed: expected


def slow_reader_gets_every_byte_written_back():
        with Daemon(['--listen', '127.0.0.1:{port}', '--log-level', 'debug',
                     '--shutdown-timeout', '10']) as daemon:
                client = daemon.connect()
                sent = garbage(PAYLOAD_BYTES)
                threading.Thread(target=send_all_then_half_close, args=(client, sent),
                                 daemon=True).start()
                received = bytearray()
                client.settimeout(bound(10))
                started = time.monotonic()
                while True:
                        if started and time.monotonic() - started > SIGTERM_AFTER_SECONDS:
                                daemon.signal(signal.SIGTERM)
                                started = None
                        try:
                                chunk = client.recv(READ_CHUNK)
                        except ConnectionResetError:
                                break
                        if not chunk:
                                break
                        received += chunk
                        time.sleep(READ_PAUSE_SECONDS)
                expect(daemon.wait_exit(bound(15)) == 0, 'the daemon did not exit 0')
                closed = wait_until(lambda: daemon.log_lines(' closed'), bound(5))
                written = [int(m.group(1)) for line in closed
                           if (m := re.search(r'closed.* after (\d+) bytes', line))]
                expect(len(written) == 1, f'expected one "closed after N bytes" line, saw '
                                          f'{daemon.log_lines()}')
                expect(bytes(received) == sent[:len(received)],
                       'what came back is not a prefix of what was sent')
                expect(len(received) == written[0],
                       f'the child wrote back {written[0]} bytes, the client received '
                       f'{len(received)} before the end of stream: '
                       f'{written[0] - len(received)} lost')
                client.close()


run(slow_reader_gets_every_byte_written_back)
