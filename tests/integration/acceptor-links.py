#!/usr/bin/env python3
"""The acceptor is small by construction: the program that forks one child per connection
needs libc alone, so a fork copies no library but libc, and nothing runs behind libc's back.
Its dynamic section names libc and the dynamic loader only (and, in a sanitizer build, the
sanitizer's runtimes and what they need, which come first in every process anyway), and it
imports no dlopen(3), which would bring any library in at run time (libc holds dlopen
since glibc 2.34, so NEEDED alone would not show it).

    acceptor-links.py ECHOD_ACCEPTOR"""
import re
import subprocess
import sys

LIBC = re.compile(r'^(libc\.so\.\d+|ld-linux[-\w.]*\.so\.\d+)$')
SANITIZER = re.compile(r'^lib(asan|ubsan|lsan|tsan)\.so\.\d+$')
# What the sanitizer runtimes themselves need, allowed only beside one of them.
SANITIZER_DEPS = re.compile(r'^(libm|libgcc_s|libstdc\+\+|libdl|libpthread|librt)\.so\.\d+$')
LOADS_LIBRARIES = re.compile(r'^(dlopen|dlmopen)(@.*)?$')


def needed(path):
        out = subprocess.run(['readelf', '--dynamic', path], capture_output=True, text=True,
                             check=True).stdout
        if 'There is no dynamic section' in out:
                return []
        libs = re.findall(r'\(NEEDED\)\s+Shared library: \[([^]]+)\]', out)
        if not libs:
                raise SystemExit(f'FAIL: no NEEDED entries read from {path}')
        return libs


def imported(path):
        out = subprocess.run(['nm', '--dynamic', '--undefined-only', path], capture_output=True,
                             text=True, check=True).stdout
        return [line.split()[-1] for line in out.splitlines() if line.split()]


def main():
        path = sys.argv[1]
        libs = needed(path)
        sanitized = any(SANITIZER.match(lib) for lib in libs)
        others = [lib for lib in libs if not LIBC.match(lib) and not SANITIZER.match(lib) and
                  not (sanitized and SANITIZER_DEPS.match(lib))]
        if others:
                print(f'FAIL: echod-acceptor links {others}: it must link libc alone',
                      file=sys.stderr)
                return 1
        loaders = [sym for sym in imported(path) if LOADS_LIBRARIES.match(sym)]
        if loaders:
                print(f'FAIL: echod-acceptor imports {loaders}: it must load no library',
                      file=sys.stderr)
                return 1
        print(f'PASS: echod-acceptor needs {libs or "nothing (static)"}, loads nothing')
        return 0


sys.exit(main())
