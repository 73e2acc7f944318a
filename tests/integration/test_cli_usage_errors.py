#!/usr/bin/env python3
"""Bad options, values, ranges and addresses: exactly one stderr line "echod: ..." naming the
option, exit status 2, nothing on stdout, and no socket created (usage is checked before any
socket exists)."""
import os
import socket
import tempfile

from echod_test import echod_lines, expect, free_port, run, run_echod

# (arguments, what the one line must name)
BAD_COMMAND_LINES = [
        (['--bogus'], '--bogus'),
        (['-x'], '-x'),
        (['--listen'], '--listen'),
        (['-c'], '-c'),
        (['--help=yes'], '--help'),
        (['--max-connections', 'many'], '--max-connections'),
        (['--max-connections', '0'], '--max-connections'),
        (['--max-connections', '65537'], '--max-connections'),
        (['--max-connections', '-1'], '--max-connections'),
        (['--idle-timeout', '1e3'], '--idle-timeout'),
        (['--idle-timeout', '86401'], '--idle-timeout'),
        (['--shutdown-timeout', ''], '--shutdown-timeout'),
        (['--shutdown-timeout', '99999999999999999999'], '--shutdown-timeout'),
        (['--log-level', 'loud'], '--log-level'),
        (['--listen', '127.0.0.1:0'], '--listen'),
        (['--listen', '127.0.0.1:65536'], '--listen'),
        (['--listen', '999.0.0.1:7'], '--listen'),
        (['--listen', '::1:7'], '--listen'),
        (['--listen', '[::1]7'], '--listen'),
        (['--listen', 'localhost:7'], '--listen'),
        (['--listen', '/' + 'x' * 200], '--listen'),
        (['--inetd', '--listen', '7'], '--inetd'),
        (['--listen', '7', 'extra'], 'extra'),
]


def expect_usage_error(args, named):
        status, out, err = run_echod(args)
        what = f'echod {" ".join(args)}'
        expect(status == 2, f'{what}: expected exit status 2, got {status} ({err!r})')
        expect(out == '', f'{what}: expected nothing on stdout, got {out!r}')
        lines = err.splitlines()
        expect(len(lines) == 1 and lines == echod_lines(err),
               f'{what}: expected exactly one "echod: " line on stderr, got {lines}')
        expect(named in lines[0], f'{what}: expected the line to name {named!r}: {lines[0]!r}')


def usage_errors_exit_2_before_any_socket():
        for args, named in BAD_COMMAND_LINES:
                expect_usage_error(args, named)

        # A bad value after a good --listen: the socket file must never appear.
        with tempfile.TemporaryDirectory(prefix='echod-test-') as tmp:
                path = os.path.join(tmp, 'echo.sock')
                expect_usage_error(['--listen', path, '--max-connections', '0'],
                                   '--max-connections')
                expect(not os.path.exists(path), f'a usage error created the socket {path}')

        # ...nor a bind: with the port taken, a bind first would have made it exit 1.
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
                taken.bind(('127.0.0.1', port))
                taken.listen()
                expect_usage_error(['--listen', f'127.0.0.1:{port}', '--max-connections', '0'],
                                   '--max-connections')


run(usage_errors_exit_2_before_any_socket)
