#!/usr/bin/env python3
"""-h/--help print the usage on stdout and exit 0; -V/--version print "echod VERSION"."""
import os
import re

from echod_test import expect, run, run_echod

OPTIONS = ('--listen', '--inetd', '--max-connections', '--idle-timeout', '--shutdown-timeout',
           '--log-level', '--help', '--version')


def help_and_version_go_to_stdout():
        for flag in ('-h', '--help'):
                status, out, err = run_echod([flag])
                expect(status == 0, f'{flag}: expected exit status 0, got {status}')
                expect(out.startswith('Usage: echod'), f'{flag}: expected the usage, got {out!r}')
                missing = [o for o in OPTIONS if o not in out]
                expect(not missing, f'{flag}: the usage does not mention {missing}')
                expect(err == '', f'{flag}: expected nothing on stderr, got {err!r}')

        version = os.environ.get('ECHOD_VERSION', r'\d+\.\d+\.\d+')
        for flag in ('-V', '--version'):
                status, out, err = run_echod([flag])
                expect(status == 0, f'{flag}: expected exit status 0, got {status}')
                expect(re.fullmatch(rf'echod {version}\n', out),
                       f'{flag}: expected "echod {version}", got {out!r}')
                expect(err == '', f'{flag}: expected nothing on stderr, got {err!r}')


run(help_and_version_go_to_stdout)
