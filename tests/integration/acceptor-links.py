#!/usr/bin/env python3
"""The acceptor is small by construction: the program that forks one child per connection
needs libc alone (its dynamic section names no other library but those a sanitizer build
adds), so a fork copies no library but libc, and nothing runs behind libc's back.

    acceptor-links.py ECHOD_ACCEPTOR"""
import re
import subprocess
import sys

ALLOWED = re.compile(r'^(libc\.so\.\d+|ld-linux[-\w.]*\.so\.\d+|lib(asan|ubsan|lsan)\.so\.\d+|'
                     r'libm\.so\.\d+|libgcc_s\.so\.\d+|libstdc\+\+\.so\.\d+)$')


def main():
        out = subprocess.run(['readelf', '--dynamic', sys.argv[1]], capture_output=True,
                             text=True, check=True).stdout
        needed = re.findall(r'\(NEEDED\)\s+Shared library: \[([^]]+)\]', out)
        if not needed and 'There is no dynamic section' not in out:
                print(f'FAIL: no NEEDED entries read from {sys.argv[1]}', file=sys.stderr)
                return 1
        others = [lib for lib in needed if not ALLOWED.match(lib)]
        if others:
                print(f'FAIL: echod-acceptor links {others}: it must link libc alone',
                      file=sys.stderr)
                return 1
        print(f'PASS: echod-acceptor needs {needed or "nothing (static)"}')
        return 0


sys.exit(main())
