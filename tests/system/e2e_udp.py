"""UDP: the shipped, opt-in echo-udp.socket enabled as echod(8) says, echoing
datagrams from the same service, and the reflection guard refusing a source
port below 1024. It stays enabled for the upgrade checks."""

import json
import os
import socket

from e2e_lib import (
    LOOPBACK_V4, MSG_DATAGRAM_DROPPED, PORT, check, echo_once, journal_entries, udp_exchange,
    wait_for, wait_status)


def privileged_udp_socket():
    """A UDP socket on a free port below 1024 (we are root): the source port
    of a spoofed datagram aimed at another service."""
    for port in range(1000, 600, -1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
            return s
        except OSError:
            s.close()
    raise AssertionError("no free UDP port between 601 and 1000")


def check_udp_opt_in(c):
    """The shipped, opt-in echo-udp.socket, enabled as echod(8) says: the
    same sandboxed service echoes datagrams through it (RestrictAddressFamilies=
    AF_UNIX filters only new sockets), and the reflection guard refuses a
    source port below 1024. It stays enabled for the upgrade and purge checks."""
    # systemd refuses to start a socket whose service is running, and a
    # running service would not get the new socket: stop it first.
    c.systemctl("stop", "echo.service")
    c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
    c.systemctl("enable", "--now", "echo-udp.socket")
    check(c.state("is-enabled", "echo-udp.socket") == "enabled"
          and c.state("is-active", "echo-udp.socket") == "active",
          "systemctl enable --now echo-udp.socket: enabled and active")
    listen = c.show("echo-udp.socket", "Listen")["Listen"]
    check(listen == "[::]:7 (Datagram)", "echo-udp.socket listens on [::]:7, IPv4 and IPv6",
          listen)
    data = os.urandom(1200)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        reply, source = udp_exchange(s, data)
        source_port = s.getsockname()[1]
    check(reply == data and source == ("127.0.0.1", PORT),
          f"a datagram from port {source_port} starts echo.service and comes back whole, "
          "from port 7", repr(source))
    data = os.urandom(4096)
    check(echo_once(data)[0] == data, "the same service still echoes TCP")
    text = wait_status(c, "0 active, 1 total connections, 1 datagrams echoed, 0 dropped")
    check(text is True, "StatusText counts the connection and the datagram: one service has "
          "both sockets", f"got {text!r}")

    with privileged_udp_socket() as low:
        low_port = low.getsockname()[1]
        reply, _ = udp_exchange(low, b"reflect me", timeout=2)
    check(reply is None, f"a datagram from source port {low_port} gets no reply", repr(reply))
    text = wait_status(c, "0 active, 1 total connections, 1 datagrams echoed, 1 dropped")
    check(text is True, "StatusText counts it as dropped", f"got {text!r}")

    def dropped_logged():
        return [e for e in journal_entries(c) if e.get("MESSAGE_ID") == MSG_DATAGRAM_DROPPED
                and e.get("REMOTE_PORT") == str(low_port)]
    entries = wait_for(dropped_logged, 5, 0.25)
    check(entries and entries[0].get("REMOTE_ADDR") in LOOPBACK_V4
          and entries[0].get("PRIORITY") == "5",
          "the drop is in the journal (MESSAGE_ID, REMOTE_ADDR, REMOTE_PORT, PRIORITY=5)",
          json.dumps(entries[:1]))


# The checks, in the order they run (e2e.py runs the modules in order).
CHECKS = [
    check_udp_opt_in,
]
