#!/usr/bin/env python3
"""--listen on an address already in use: exit status 1 and one line naming the address."""
import socket

from echod_test import echod_lines, expect, free_port, run, run_echod


def address_in_use_exits_1_naming_it():
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
                taken.bind(('127.0.0.1', port))
                taken.listen()

                status, out, err = run_echod(['--listen', f'127.0.0.1:{port}'])

        expect(status == 1, f'expected exit status 1, got {status} ({err!r})')
        lines = echod_lines(err)
        expect(len(lines) == 1, f'expected one "echod: " line, got {lines}')
        expect(f'127.0.0.1:{port}' in lines[0] and 'in use' in lines[0],
               f'expected the line to name 127.0.0.1:{port} and say it is in use: {lines[0]!r}')
        expect(out == '', f'expected nothing on stdout, got {out!r}')


run(address_in_use_exits_1_naming_it)
