#!/usr/bin/env python3
"""No socket from systemd and no --listen: "echod: no listening sockets", exit status 1; and
--inetd with a standard input that is no socket: one line saying so, exit status 1."""
from echod_test import echod_lines, expect, run, run_echod


def without_sockets_exits_1():
        status, out, err = run_echod([])
        expect(status == 1, f'no sockets: expected exit status 1, got {status} ({err!r})')
        expect(echod_lines(err) == ['echod: no listening sockets'],
               f'no sockets: expected "echod: no listening sockets", got {err!r}')

        status, out, err = run_echod(['--inetd'])      # stdin is /dev/null
        expect(status == 1, f'--inetd on /dev/null: expected exit status 1, got {status}')
        lines = echod_lines(err)
        expect(len(lines) == 1 and '--inetd' in lines[0] and 'standard input' in lines[0],
               f'--inetd on /dev/null: expected one line about standard input, got {lines}')


run(without_sockets_exits_1)
