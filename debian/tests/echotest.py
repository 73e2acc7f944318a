"""What the DEP-8 tests share: clients of port 7 on the loopback, systemctl
and journalctl, and check(), which ends the test with what it saw."""

import os
import socket
import subprocess
import sys
import time

PORT = 7
MSG_LISTENING = "95d121a181f543a795c4bfe3e36d6340"


def check(condition, what, details=""):
    """Prints @what as passed, or fails the test with it (exit 1)."""
    if condition:
        print(f"ok - {what}", flush=True)
        return
    print(f"not ok - {what}" + (f"\n{details}" if details else ""), flush=True)
    sys.exit(1)


def skip(why):
    print(f"SKIP: {why}", flush=True)
    sys.exit(77)


def run(*cmd):
    """@cmd's stdout; stderr goes to stdout too (autopkgtest fails a test
    that writes to stderr), and a failure ends the test."""
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        check(False, f"{' '.join(cmd)}: exit status {result.returncode}", result.stdout)
    return result.stdout


def systemctl(*args):
    return run("systemctl", "--no-pager", *args)


def state(verb, unit):
    result = subprocess.run(["systemctl", verb, unit], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    return result.stdout.strip()


def show(unit, prop):
    return systemctl("show", unit, f"--property={prop}", "--value").strip()


def restart_service():
    """systemd refuses a sixth start within 10 s (start-limit-hit), and the
    socket would fail with the service: clear the counter first."""
    systemctl("reset-failed", "echo.socket", "echo.service")
    systemctl("restart", "echo.service")


def wait_for(predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def connect(host="127.0.0.1", source=None, timeout=10):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if source:
        sock.bind((source, 0))
    sock.connect((host, PORT))
    return sock


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 65536))
        if not chunk:
            break
        data += chunk
    return data


def echo(data, host="127.0.0.1", source=None):
    """Sends @data, closes the sending side, reads to the end of the stream:
    what came back. Sent in pieces, each read back before the next, so that
    neither side's buffers fill."""
    with connect(host, source) as sock:
        back = b""
        for at in range(0, len(data), 32768):
            piece = data[at:at + 32768]
            sock.sendall(piece)
            back += recv_exactly(sock, len(piece))
        sock.shutdown(socket.SHUT_WR)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return back
            back += chunk


def random_bytes(n):
    return os.urandom(n)
