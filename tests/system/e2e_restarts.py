"""Restarts: systemd keeps the listening socket open while echo.service
restarts (no client refused), and through the fd store every live connection
passes from one echod to the next (no byte lost, repeated or reordered), up to
the default cap, including connections opened a moment before the restart and
through a crash or a hang of the main process; short connections never reach
the store (PID 1); a connection echod ends really closes, and a stop (unlike
a restart) closes everything."""

import contextlib
import os
import re
import socket
import time

from e2e_lib import (
    FD_NAME_PREFIX, MSG_CLOSED, MSG_FD_STORE_FULL, MSG_STOPPING, N_STREAMS, NewConnections, PORT, check,
    check_streams_exact, children_of, connect, echo_once, journal_entries, log, main_pid,
    open_echoing, passed_fd_names, port_listening, recv_exactly, require, restart_service, run,
    settle, start_streams, store_size, wait_for)


def journal_cursor(c):
    out = c.run("journalctl", "--no-pager", "-n", "0", "--show-cursor").stdout
    return re.search(r"^-- cursor: (.+)$", out, re.MULTILINE).group(1)


def fd_store_log(c, cursor):
    """What PID 1 logged at debug level, since @cursor, about the fds in
    echo.service's store: ("added", name) for each connection echod stores,
    ("removed", name) on an FDSTOREREMOVE=1 (echod sends one as each
    connection ends), ("hangup", name) when systemd drops a connection it saw
    close (it does not poll those echod stores, FDPOLL=0). The wording is
    systemd 252's and 257's."""
    out = c.run("journalctl", "--no-pager", "-o", "cat", "_PID=1",
                f"--after-cursor={cursor}").stdout
    events = []
    for line in out.splitlines():
        m = re.match(r"echo\.service: (Added fd|Got explicit request to remove fd|Received \S+ on "
                     r"stored fd) \d+ \((" + FD_NAME_PREFIX + r"[^)]*)\)", line)
        if m:
            kind = {"Added fd": "added", "Got explicit request to remove fd": "removed"}
            events.append((kind.get(m.group(1), "hangup"), m.group(2)))
    return events


def journal_since(c, cursor):
    """For a failure: what PID 1 and everyone logged since @cursor (once, on
    systemd 257, PID 1's debug lines did not show up in time)."""
    return ("PID 1 since:\n" + c.run("journalctl", "--no-pager", "-o", "cat", "_PID=1",
                                     f"--after-cursor={cursor}").stdout[-1500:] +
            "\nall since:\n" + c.run("journalctl", "--no-pager", "-o", "short-monotonic",
                                      f"--after-cursor={cursor}", "-n", "15").stdout)


def check_restart_under_load(c):
    """Clients keep connecting while the service restarts three times: the
    socket stays open in PID 1, so no client may notice."""
    pids = [c.show("echo.service", "MainPID")["MainPID"]]
    new_connections = NewConnections(4)
    try:
        for _ in range(3):
            time.sleep(0.3)
            restart_service(c)
            pids.append(c.show("echo.service", "MainPID")["MainPID"])
        time.sleep(0.3)
    finally:
        total = new_connections.stop()
    results = new_connections.results
    check(len(set(pids)) == 4, f"three restarts, four main processes: {pids}")
    check(total >= 300, f"{total} connections during the restarts")
    if not check(results["ok"] == total, f"none refused, none cut, every echo exact: {results}",
                 str(new_connections.errors[:10])):
        cut = [e["MESSAGE"] for e in journal_entries(c)
               if e.get("MESSAGE_ID") == MSG_STOPPING or
               (e.get("MESSAGE_ID") == MSG_CLOSED and e.get("BYTES") == "0")]
        log("  from the journal, the stops and the connections closed after 0 bytes:\n  "
            + "\n  ".join(cut))


def check_restarts_keep_connections(c):
    """N_STREAMS clients stream without pause through three restarts of
    echo.service. echod puts each connection in systemd's fd store once it
    has lived 0.25-0.5 s, under a name of its own; on a restart its children
    write back what they have read and leave their connections open, and
    the next echod gets them from the store, after its listening socket, and
    goes on echoing: no client notices. One more client, connected and
    closed within a moment, never reaches the store, and no later echod
    resumes it. PID 1's debug log names the fds it stores, and, once the
    clients close, the removals echod asks for."""
    n = N_STREAMS
    size = settle(lambda: store_size(c), 0)
    check(size == 0, f"NFileDescriptorStore={size} while no client is connected")
    pid = main_pid(c)
    streams = None
    try:
        c.run("systemd-analyze", "log-level", "debug")
        try:
            cursor = journal_cursor(c)
            streams = start_streams(c, seed=1)

            def stored_names():
                return [name for event, name in fd_store_log(c, cursor) if event == "added"]
            # journald may take seconds to show PID 1's debug lines, under load
            names = wait_for(lambda: len(stored_names()) >= n and stored_names(), 20) or []
            stored = len(names) == n and len(set(names)) == n and all(
                x.startswith(f"{FD_NAME_PREFIX}{pid}-") for x in names)
            check(stored, f"echod {pid} puts the {n} connections in the fd store, each under "
                  f"a name of its own: {len(names)} fds under {len(set(names))} names "
                  f"({names[:2]}...)", "" if stored else f"{names}\n" + journal_since(c, cursor))

            with connect() as closer:
                closer.sendall(b"bye")
                require(recv_exactly(closer, 3) == b"bye", "one more client connects and echoes")
            time.sleep(1)
            added = wait_for(lambda: len(stored_names()) >= n and stored_names(), 20) or []
            time.sleep(1)
            added = stored_names()
            check(len(added) == n, f"a connection closed within a moment never reaches the fd "
                  f"store: {len(added) - n} more fds stored")
        finally:
            c.run("systemd-analyze", "log-level", "info", check_status=False)
        size = settle(lambda: store_size(c), n)
        check(size == n,
              f"NFileDescriptorStore={size} before the restarts: the {n} live connections")

        for i in range(1, 4):
            since = streams.checked()
            started = time.monotonic()
            restart_service(c)
            took = time.monotonic() - started
            pid = main_pid(c)
            passed = passed_fd_names(c, pid)
            stored = [x for x in passed if x.startswith(FD_NAME_PREFIX)]
            check(passed[:1] == ["echo.socket"] and len(passed) == n + 1
                  and sorted(stored) == sorted(names),
                  f"restart {i} ({took:.1f} s): echod {pid} gets echo.socket, then the {n} stored "
                  "connections by their names, nothing else",
                  f"passed, not stored: {sorted(set(stored) - set(names))}; stored, not passed: "
                  f"{sorted(set(names) - set(stored))}")
            children = settle(lambda: len(children_of(c, pid)), n)
            size = store_size(c)
            check(children == n == size, f"restart {i}: {children} children, one per live "
                  f"client; NFileDescriptorStore={size}")
            stuck = streams.progress(since, 10)
            check(not stuck and not streams.ended(),
                  f"restart {i}: all {n} clients still connected, every one's echo flowing again",
                  streams.describe(stuck + streams.ended()))
            time.sleep(0.5)
        check_streams_exact(streams, "across 3 restarts")
    finally:
        if streams:
            streams.close()
    size = settle(lambda: store_size(c), 0)
    check(size == 0, f"closed by their clients, the connections leave the fd store: "
          f"NFileDescriptorStore={size}")


def check_ended_by_echod_closes(c):
    """A connection echod ends itself, here at --idle-timeout, must close for
    its client although the fd store holds a copy: the child shuts it down
    both ways, which ends it for the client at once and makes PID 1, which
    polls what it stores, drop its copy. (A client that closes is no test of
    this: systemd sees that hang-up itself.)"""
    dropin = "/run/systemd/system/echo.service.d"
    c.run("mkdir", "-p", dropin)
    c.run("sh", "-c", "echo 'ECHOD_OPTS=\"--log-level=debug --idle-timeout=2\"' "
          ">/run/echod-e2e-idle.env && "
          f"printf '[Service]\\nEnvironmentFile=/run/echod-e2e-idle.env\\n' >{dropin}/idle.conf")
    try:
        c.systemctl("daemon-reload")
        restart_service(c)
        with connect() as idle:
            idle.sendall(b"x")
            require(recv_exactly(idle, 1) == b"x", "a client echoes once, then sends nothing")
            started = time.monotonic()
            idle.settimeout(8)
            try:
                how = "EOF" if idle.recv(1) == b"" else "bytes"
            except socket.timeout:
                how = "nothing in 8 s"
            except OSError as e:
                how = repr(e)
            took = time.monotonic() - started
        check(how == "EOF" and took < 5, f"echod ends it at --idle-timeout=2: the client sees "
              f"{how} after {took:.1f} s, although the fd store held a copy")
        size = settle(lambda: store_size(c), 0)
        check(size == 0, f"NFileDescriptorStore={size} after it")
    finally:
        c.run("rm", "-rf", dropin, "/run/echod-e2e-idle.env")
        c.systemctl("daemon-reload")
        restart_service(c)


def check_reused_pid_keeps_names_apart(c):
    """A connection keeps its first fd-store name, echod-conn-PID-N (N counts
    the names that echod gave), through any number of restarts, and PIDs
    wrap: an echod that gets the PID of the one that named a still-stored
    connection must not give a new connection the same name, since
    FDSTOREREMOVE=1, sent when that one ends, would close every fd of the
    name. The container's next PID is set (ns_last_pid, written from the host's /proc
    inside the container's PID namespace) so that a restart gives echod an
    earlier echod's PID again."""
    restart_service(c)                      # a fresh echod: its first name ends in -1
    first = int(main_pid(c))
    kept = connect()
    try:
        kept.sendall(b"k")
        require(recv_exactly(kept, 1) == b"k", f"a client of echod {first} echoes")
        restart_service(c)                  # it goes on under echod {first}'s name
        # How many PIDs a restart takes before echod's (systemctl, the
        # ExecStop= and ExecStartPre= scripts and their commands) varies a
        # little from one restart to the next: aim with what the last one took.
        offset = 20
        for _ in range(40):
            c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
            run(["nsenter", "-t", str(c.leader), "-p", "--", "sh", "-c",
                 f"echo {first - offset} >/proc/sys/kernel/ns_last_pid && exec nsenter -t "
                 f"{c.leader} -m -u -i -n -- systemctl --no-pager restart echo.service"])
            got = int(main_pid(c))
            if got == first:
                break
            took = got - (first - offset)
            offset = took if 0 < took < first else offset + 1
        require(int(main_pid(c)) == first, f"a later restart gives echod PID {first} again",
                main_pid(c))
        with connect() as other:
            other.sendall(b"o")
            require(recv_exactly(other, 1) == b"o", "a new client echoes, then closes")
        size = settle(lambda: store_size(c), 1)
        check(size == 1, f"NFileDescriptorStore={size}: the new client's end leaves the kept "
              "connection in the store")
        restart_service(c)
        kept.settimeout(5)
        try:
            kept.sendall(b"K")
            echoed = recv_exactly(kept, 1)
        except OSError as e:
            echoed = repr(e).encode()
        check(echoed == b"K", f"and the kept connection survives the next restart: {echoed!r}")
    finally:
        kept.close()


def check_restart_at_the_cap(c):
    """The default --max-connections (1024) kept through a restart: systemd
    passes the listening socket and 1024 stored connections as fds 3 to
    1027, which the service's fd limit (LimitNOFILE=) must allow, or echod
    does not start and every connection is lost."""
    n = 1024
    socks = []
    try:
        require(open_echoing(socks, n, b"y"), f"{n} connections echo")
        size = settle(lambda: store_size(c), n)
        check(size == n, f"NFileDescriptorStore={size}: all {n} are in the fd store")
        c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
        restarted = c.systemctl("restart", "echo.service", check_status=False)
        pid = main_pid(c)
        stored = [x for x in passed_fd_names(c, pid) if x.startswith(FD_NAME_PREFIX)] \
            if restarted.returncode == 0 else []
        check(restarted.returncode == 0 and len(stored) == n,
              f"systemctl restart echo.service: echod {pid} starts with the {len(stored)} "
              "stored connections", restarted.stderr + "\n".join(
                  e.get("MESSAGE", "") for e in journal_entries(c)[-5:]))
        for s in socks:
            with contextlib.suppress(OSError):
                s.sendall(b"z")
        deadline = time.monotonic() + 10

        def echoed_back(s):
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                return recv_exactly(s, 1) == b"z"
            except OSError:
                return False
        echoed = sum(echoed_back(s) for s in socks)
        check(echoed == n, f"after the restart, {echoed} of the {n} connections echo")
    finally:
        for s in socks:
            s.close()
        if c.state("is-active", "echo.socket") != "active":
            c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
            c.systemctl("start", "echo.socket")
    size = settle(lambda: store_size(c), 0, 15)
    check(size == 0,
          f"closed by their clients, they leave the fd store: NFileDescriptorStore={size}")


def check_stop_and_start(c):
    """Stop is not restart: systemd empties the fd store, so echod, told by
    ExecStop= that no restart follows, hands nothing over: every child
    finishes its connection, and each client gets back, in order, every byte
    echod read, then EOF, never a reset. Nothing is kept for a later
    start."""
    n = N_STREAMS
    streams = start_streams(c, seed=1000)
    try:
        size = settle(lambda: store_size(c), n)
        check(size == n, f"NFileDescriptorStore={size}: the {n} live connections")
        started = time.monotonic()
        c.systemctl("stop", "echo.service", "echo.socket")
        stopped = time.monotonic() - started
        wait_for(lambda: len(streams.ended()) == n, 10)
        ended = streams.ended()
        how = {kind: sum(x.ended == kind for x in ended) for kind in {x.ended for x in ended}}
        slowest = max((x.ended_at - started for x in ended), default=0)
        check(len(ended) == n and set(how) == {"eof"},
              f"systemctl stop echo.service echo.socket ({stopped:.1f} s): each of the {n} "
              f"clients sees its connection end cleanly, within {slowest:.1f} s: {how}",
              streams.describe([x for x in streams.clients if x.ended != "eof"]))
        check(not any(x.wrong for x in streams.clients),
              f"every byte echoed until then was right ({streams.bytes_checked()} bytes checked)")
    finally:
        streams.close()
    check(c.run("pgrep", "-x", "echod|echod-acceptor|echod-conn",
                check_status=False).returncode == 1,
          "stop leaves no echod process")
    size = store_size(c)
    check(size == 0, f"NFileDescriptorStore={size} after stop")
    check(not port_listening(), f"port {PORT} is closed after stop")
    c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
    c.systemctl("start", "echo.socket")
    data = os.urandom(4096)
    check(echo_once(data)[0] == data, "start echo.socket again: echoes again")
    check(c.state("is-active", "echo.service") == "active", "echo.service active again")


def check_short_connections_stay_out_of_the_store(c):
    """With 1000 connections held (and stored), a flood of short connections
    (connect, up to 4 KiB, close) must not reach PID 1: NFileDescriptorStore
    stays at the held count throughout, instead of following the flood."""
    n = 1000
    socks = []
    try:
        require(open_echoing(socks, n, b"h"), f"{n} connections held")
        size = settle(lambda: store_size(c), n)
        require(size == n, f"NFileDescriptorStore={size}: the {n} held connections")
        flood = NewConnections(4)
        sizes = []
        try:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                sizes.append(store_size(c))
                time.sleep(0.2)
        finally:
            total = flood.stop()
        check(flood.results["ok"] == total and total >= 300 and max(sizes) == n,
              f"{total} short connections with {n} held: NFileDescriptorStore stays at {n} "
              f"(seen {min(sizes)}..{max(sizes)})", str(flood.results))
    finally:
        for s in socks:
            s.close()
    size = settle(lambda: store_size(c), 0, 15)
    check(size == 0, f"closed by their clients, they leave the fd store: "
          f"NFileDescriptorStore={size}")


def check_restart_keeps_young_connections(c):
    """Connections opened within 100 ms before `systemctl restart`, too young
    for the store, go into it at the SIGTERM, before their children stop:
    each gets back exactly what it sent before and after the restart."""
    n = 50
    before = [os.urandom(100 + i) for i in range(n)]
    after = [os.urandom(200 + i) for i in range(n)]
    socks = []
    try:
        started = time.monotonic()
        for data in before:
            s = connect()
            s.sendall(data)
            socks.append(s)
        opened = time.monotonic() - started
        restart_service(c)
        for s, data in zip(socks, after):
            with contextlib.suppress(OSError):
                s.sendall(data)
        exact, outcomes = 0, {}
        for s, a, b in zip(socks, before, after):
            try:
                s.shutdown(socket.SHUT_WR)
                got = recv_exactly(s, len(a) + len(b))
                s.settimeout(5)
                outcome = "exact" if got == a + b and s.recv(1) == b"" else "wrong bytes"
            except (OSError, AssertionError) as e:
                outcome = type(e).__name__ + ": " + str(e)[:80]
            exact += outcome == "exact"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        check(exact == n, f"{exact} of {n} connections opened within {opened * 1000:.0f} ms "
              "before a restart got back exactly what they sent, before and after it, then EOF",
              f"{outcomes}\n" + "\n".join(e.get("MESSAGE", "") for e in journal_entries(c)[-12:]))
    finally:
        for s in socks:
            s.close()


def wait_new_main(c, old_pid, timeout):
    """The new echod's PID once systemd restarted the service, or None."""
    def new_main():
        pid = main_pid(c)
        return pid if pid not in ("0", old_pid) and c.state("is-active", "echo.service") \
            == "active" else None
    return wait_for(new_main, timeout)


def check_crash_and_hang_keep_connections(c):
    """N_STREAMS clients, several seconds old (so in the fd store), stream
    without a pause through a crash of the main process (SIGKILL) and then a
    hang (SIGSTOP): its children hand their connections over when it dies
    (the kernel tells them), the watchdog (WatchdogSec=10s) kills the hung
    one, and, the service's last process gone (ExitType=cgroup: systemd
    waits for the children instead of killing them), Restart=on-failure
    starts a new echod each time, which resumes every stored connection:
    every client's bytes come back exactly once. The children go on echoing
    while the main process is stopped."""
    n = N_STREAMS
    c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
    streams = start_streams(c, seed=2000)
    try:
        time.sleep(2)
        size = settle(lambda: store_size(c), n)
        require(size == n, f"NFileDescriptorStore={size}: the {n} streaming connections")
        for how, sig, timeout in (("SIGKILL", "KILL", 10), ("SIGSTOP", "STOP", 30)):
            since = streams.checked()
            old = main_pid(c)
            started = time.monotonic()
            c.run("kill", f"-{sig}", old)
            new = wait_new_main(c, old, timeout)
            took = time.monotonic() - started
            check(new is not None, f"{how} of echod {old}: systemd starts echod {new} after "
                  f"{took:.1f} s")
            children = settle(lambda: len(children_of(c, new)), n) if new else 0
            stuck = streams.progress(since, 10)
            check(children == n and not stuck and not streams.ended(),
                  f"after the {how}: {children} children resume the {n} connections, every "
                  "one's echo flowing again", streams.describe(stuck + streams.ended()))
            c.systemctl("reset-failed", "echo.socket", "echo.service", check_status=False)
        check_streams_exact(streams, "through a crash and a hang of the main process")
    finally:
        streams.close()
    size = settle(lambda: store_size(c), 0)
    check(size == 0, f"NFileDescriptorStore={size} once the clients closed")


def restart_keeps_what_fits(c, streams, n, size, what):
    """Restarts echo.service with @n clients streaming and a store of
    @size: the @size connections kept come through byte-exact, every other
    ends cleanly: its client gets back, in order, every byte echod read,
    then EOF, never a reset."""
    since = streams.checked()
    restart_service(c)
    wait_for(lambda: len(streams.ended()) >= n - size, 10)
    ended = streams.ended()
    clean = [x for x in ended if x.ended == "eof" and not x.wrong]
    check(len(ended) == n - size and len(clean) == len(ended),
          f"{what}: the restart ends the {n - size} connections not kept, each cleanly: "
          f"its echo exact up to the restart, then EOF ({len(clean)} of {len(ended)})",
          streams.describe([x for x in ended if x not in clean]))
    kept = [x for x in streams.clients if not x.ended]
    before = dict(zip(streams.clients, since))

    def stuck():
        return [x for x in kept if x.checked <= before[x]]
    wait_for(lambda: not stuck(), 10)
    stuck = stuck()
    stored = store_size(c)
    check(len(kept) == size == stored and not stuck,
          f"{what}: the {len(kept)} kept connections echo again after the restart; "
          f"NFileDescriptorStore={stored}", streams.describe(stuck))
    streams.finish(20)
    inexact = [x for x in kept if not x.exact()]
    check(not inexact, f"{what}: {len(kept) - len(inexact)} of {len(kept)} kept connections "
          "got back exactly what they sent, then EOF", streams.describe(inexact))


def check_lowered_store_keeps_what_fits(c):
    """An administrator lowers FileDescriptorStoreMax= in a drop-in, below
    the number of live connections. First while echod runs (daemon-reload,
    no restart): PID 1 refuses the stores past the new size, and echod, which
    learnt the size at its start, cannot know; at the restart ExecStop= tells
    it the size PID 1 enforces now, and echod stores its connections again,
    up to it. Then with echod started under the new size, which it learns
    from systemd ($FDSTORE on systemd 254 and later, ExecStartPre= on 252):
    it stores no more (PID 1 refuses none) and logs, once a second at most,
    that the others are not kept. Both times, at the restart, those that fit
    come through byte-exact and every other ends cleanly."""
    n, size = N_STREAMS, 20
    dropin = "/run/systemd/system/echo.service.d"
    c.run("mkdir", "-p", dropin)
    c.run("sh", "-c", f"printf '[Service]\\nFileDescriptorStoreMax={size}\\n' "
          f">{dropin}/store.conf")
    streams = None
    try:
        c.systemctl("daemon-reload")
        streams = start_streams(c, seed=3000)
        time.sleep(1.5)
        restart_keeps_what_fits(c, streams, n, size, "lowered while echod runs")
        streams.close()

        cursor = journal_cursor(c)
        streams = start_streams(c, seed=3100)
        time.sleep(1.5)
        stored = settle(lambda: store_size(c), size)
        full = [e for e in journal_entries(c) if e.get("MESSAGE_ID") == MSG_FD_STORE_FULL]
        pid1 = c.run("journalctl", "--no-pager", "-o", "cat", "_PID=1",
                     f"--after-cursor={cursor}").stdout
        check(stored == size and full and "Hit fd store limit" not in pid1 and
              "Cannot store more fds" not in pid1,
              f"FileDescriptorStoreMax={size} with {n} connections: NFileDescriptorStore="
              f"{stored}, echod logged the store full {len(full)} times, PID 1 refused none",
              pid1[-1500:])
        restart_keeps_what_fits(c, streams, n, size, "echod started with the lowered size")
    finally:
        if streams:
            streams.close()
        c.run("rm", "-rf", dropin)
        c.systemctl("daemon-reload")
        restart_service(c)
    size = settle(lambda: store_size(c), 0)
    check(size == 0, f"NFileDescriptorStore={size} once the clients closed")


# The checks, in the order they run (e2e.py runs the modules in order).
CHECKS = [
    check_restart_under_load,
    check_restarts_keep_connections,
    check_ended_by_echod_closes,
    check_reused_pid_keeps_names_apart,
    check_restart_at_the_cap,
    check_short_connections_stay_out_of_the_store,
    check_restart_keeps_young_connections,
    check_crash_and_hang_keep_connections,
    check_lowered_store_keeps_what_fits,
    check_stop_and_start,
]
