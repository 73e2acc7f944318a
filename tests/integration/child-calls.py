#!/usr/bin/env python3
"""The child's path calls only what a lean child has: echo.c (echo_child() to _exit()) may
reference libc and a few echod functions known to call only libc, never log.c or
libsystemd, which the child does not map (src/lean.h). Reads echo.c's undefined symbols
from the daemon's static library with nm.

    child-calls.py LIBECHOD.A"""
import subprocess
import sys

# libc, as glibc 2.36 names it (with _FORTIFY_SOURCE and 64-bit variants).
LIBC = {'__errno_location', '_exit', 'clock_gettime', 'close', 'close_range', 'fcntl', 'fcntl64',
        'getenv', 'getpid', 'getppid', 'getrlimit', 'getrlimit64', 'ioctl', 'poll', '__poll_chk', 'prctl', 'raise', 'read',
        '__read_chk', 'recv', 'send', 'shutdown', 'unsetenv', 'write', 'memcpy', 'memset',
        '__stack_chk_fail', '_GLOBAL_OFFSET_TABLE_'}
# echod's own, each calling libc only: signals.c's read(), sigaction and sigprocmask.
ECHOD = {'signals_read', 'signals_reset_for_child'}
# What the sanitizer builds add: their runtimes are linked into the daemon and stay mapped.
SANITIZER_PREFIXES = ('__asan_', '__ubsan_', '__sanitizer_', '__lsan_')


def undefined_in(archive, member):
        out = subprocess.run(['nm', '--undefined-only', '--format=posix', archive],
                             capture_output=True, text=True, check=True).stdout
        symbols, inside = set(), False
        for line in out.splitlines():
                if line.endswith(':') and '[' in line:
                        name = line.rstrip(':').rsplit('[', 1)[1].rstrip(']')
                        inside = name == member or name.endswith('/' + member)
                elif inside and line.strip():
                        symbols.add(line.split()[0])
        return symbols


def main():
        symbols = undefined_in(sys.argv[1], 'echo.c.o')
        if not symbols:
                print(f'FAIL: no echo.c.o with undefined symbols in {sys.argv[1]}',
                      file=sys.stderr)
                return 1
        unknown = sorted(s for s in symbols
                         if s not in LIBC | ECHOD and not s.startswith(SANITIZER_PREFIXES))
        if unknown:
                print(f'FAIL: the child\'s path (echo.c) calls {unknown}: a lean child may '
                      'call libc and ' + ', '.join(sorted(ECHOD)) + ' only', file=sys.stderr)
                return 1
        print('PASS: echo.c calls ' + ' '.join(sorted(symbols)))
        return 0


sys.exit(main())
