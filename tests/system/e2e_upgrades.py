"""Upgrades: dpkg -i of the same version, then of a higher one while clients
stream and new ones connect: the port stays open, the new binary serves, live
connections pass to it, the opt-in UDP socket and the edited conffile are
kept."""

import os
import socket
import time

from e2e_lib import (
    FD_NAME_PREFIX, N_STREAMS, NewConnections, UPGRADE_VERSION, check, check_streams_exact,
    children_of, echo_once, echod_trouble, passed_fd_names, restart_service, settle, start_streams,
    store_size, udp_exchange)


def check_upgrade(c):
    c.run("dpkg", "-i", "/srv/echod-e2e/echod.deb", timeout=120)
    check(c.state("is-enabled", "echo.socket") == "enabled"
          and c.state("is-active", "echo.socket") == "active",
          "reinstalling (upgrade path) keeps echo.socket enabled and active")
    data = os.urandom(4096)
    check(echo_once(data)[0] == data, "echoes after the upgrade")
    check(c.state("is-enabled", "echo-udp.socket") == "enabled"
          and c.state("is-active", "echo-udp.socket") == "active",
          "the upgrade keeps the opt-in echo-udp.socket enabled and active",
          c.systemctl("status", "echo-udp.socket", check_status=False).stdout)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        reply, _ = udp_exchange(s, data[:1000])
    check(reply == data[:1000], "datagrams are echoed after the upgrade")
    # The service may still hold a UDP socket that systemd closed: only a
    # new instance shows whether systemd still passes it.
    restart_service(c)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        reply, _ = udp_exchange(s, data[:1000])
    check(reply == data[:1000], "and by a restarted echo.service after the upgrade")
    conf = c.run("cat", "/etc/default/echod").stdout
    check("--log-level=debug" in conf, "the upgrade keeps the edited /etc/default/echod")


def check_upgrade_keeps_connections(c):
    """dpkg -i of a higher version while N_STREAMS clients stream and new
    clients keep connecting. The postinst leaves echo.socket open (not one
    connection refused) and try-restarts echo.service: the new binary
    serves, and the live connections pass to it through the fd store."""
    n = N_STREAMS
    c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
    streams = start_streams(c, seed=2000)
    new_connections = None
    try:
        before = c.show("echo.service", "MainPID", "ExecMainStartTimestampMonotonic")
        socket_since = c.show("echo.socket", "ActiveEnterTimestampMonotonic")
        old_exe = c.run("stat", "-L", "-c", "%i", f"/proc/{before['MainPID']}/exe").stdout.strip()
        new_connections = NewConnections(4)
        time.sleep(0.2)
        started = time.monotonic()
        c.run("dpkg", "-i", "/srv/echod-e2e/echod-upgrade.deb", timeout=120)
        took = time.monotonic() - started
        since = streams.checked()
        time.sleep(0.2)
        total = new_connections.stop()
        results, errors = new_connections.results, new_connections.errors
        new_connections = None

        version = c.run("dpkg-query", "-W", "-f=${Version}", "echod").stdout
        check(version == UPGRADE_VERSION, f"dpkg -i upgraded echod to {version} ({took:.1f} s)")
        check(c.show("echo.socket", "ActiveEnterTimestampMonotonic") == socket_since,
              "the upgrade left echo.socket alone: its listening socket stayed open throughout")
        check(total >= 200 and results["ok"] == total,
              f"{total} new connections during the upgrade: none refused, none cut, every echo "
              f"exact: {results}", str(errors[:10]))
        after = c.show("echo.service", "MainPID", "ExecMainStartTimestampMonotonic")
        new_exe = c.run("stat", "-L", "-c", "%i", f"/proc/{after['MainPID']}/exe").stdout.strip()
        installed = c.run("stat", "-c", "%i", "/usr/sbin/echod").stdout.strip()
        check(after["MainPID"] != before["MainPID"] and
              int(after["ExecMainStartTimestampMonotonic"]) >
              int(before["ExecMainStartTimestampMonotonic"]) and
              new_exe == installed != old_exe,
              f"the postinst restarted echo.service: echod {after['MainPID']} (was "
              f"{before['MainPID']}) runs the upgraded /usr/sbin/echod (inode {new_exe}; the "
              f"installed file's: {installed}; the old echod's: {old_exe})")
        stored = [x for x in passed_fd_names(c, after["MainPID"]) if x.startswith(FD_NAME_PREFIX)]
        check(len(stored) >= n, f"the new echod got {len(stored)} connections from the fd store: "
              f"the {n} streaming clients' and any new one's in flight")
        stuck = streams.progress(since, 10)
        check(not stuck and not streams.ended(),
              f"all {n} clients still connected, every one's echo flowing from the new echod",
              streams.describe(stuck + streams.ended()))
        size = settle(lambda: store_size(c), n)
        children = settle(lambda: len(children_of(c, after["MainPID"])), n)
        check(size == n and children == n,
              f"NFileDescriptorStore={size}, {children} children: one per live client")
        check_streams_exact(streams, f"across the upgrade to {UPGRADE_VERSION}")
    finally:
        if new_connections:
            new_connections.stop()
        streams.close()
    size = settle(lambda: store_size(c), 0)
    check(size == 0, f"closed by their clients, the connections leave the fd store: "
          f"NFileDescriptorStore={size}")
    bad = echod_trouble(c)
    check(not bad, "no error, no warning, no killed child in the journal, through every restart, "
          "the stop and both upgrades", "\n".join(e.get("MESSAGE", "") for e in bad[:10]))


# The checks, in the order they run (e2e.py runs the modules in order).
CHECKS = [
    check_upgrade,
    check_upgrade_keeps_connections,
]
