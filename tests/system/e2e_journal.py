"""The journal: ECHOD_OPTS from /etc/default/echod reaches echod, every
connection's events carry the fields a user filters on, and journalctl -x
explains them from the catalog. Leaves --log-level=debug in /etc/default/echod,
which the upgrade checks must find kept."""

import json
import os
import random

from e2e_lib import (
    LOOPBACK_V4, MSG_CLOSED, MSG_LISTENING, MSG_OPENED, check, echo_once, journal, journal_entries,
    log, restart_service, wait_for)


def check_debug_journal(c):
    c.run("sh", "-c", "echo 'ECHOD_OPTS=\"--log-level=debug\"' >>/etc/default/echod")
    restart_service(c)
    check(c.state("is-active", "echo.service") == "active",
          "echo.service restarted with ECHOD_OPTS=--log-level=debug")
    cmdline = c.run("cat", f"/proc/{c.show('echo.service', 'MainPID')['MainPID']}/cmdline").stdout
    check(cmdline.split("\0")[1:2] == ["--log-level=debug"],
          "ECHOD_OPTS reaches echod's command line", repr(cmdline))

    # Several connections: each one's events must be there, with the fields
    # a user filters on.
    sent, exact = {}, 0
    for _ in range(20):
        data = os.urandom(random.randint(1, 8192))
        echoed, client_port = echo_once(data)
        exact += echoed == data
        sent[str(client_port)] = len(data)
    check(exact == len(sent), f"{len(sent)} echoes with debug logging on, {exact} exact")

    def events(entries, message_id):
        return {e.get("REMOTE_PORT"): e for e in entries
                if e.get("MESSAGE_ID") == message_id and e.get("REMOTE_PORT") in sent}

    def all_logged():
        entries = [json.loads(line) for line in c.run(
            "journalctl", "--no-pager", "-o", "json", f"MESSAGE_ID={MSG_CLOSED}").stdout.splitlines()]
        return len(events(entries, MSG_CLOSED)) == len(sent)
    wait_for(all_logged, 5, 0.25)      # journald is asynchronous
    entries = journal_entries(c)
    opened, closed = events(entries, MSG_OPENED), events(entries, MSG_CLOSED)

    good_opened = [p for p, e in opened.items()
                   if e.get("REMOTE_ADDR") in LOOPBACK_V4 and e.get("PRIORITY") == "7"
                   and int(e.get("CHILD_PID", 0)) > 0]
    check(len(good_opened) == len(sent),
          f"journalctl -u echo.service: a connection-opened event (MESSAGE_ID, "
          f"REMOTE_ADDR, REMOTE_PORT, CHILD_PID, PRIORITY=7) for each of {len(sent)} "
          f"connections: {len(good_opened)}")
    good_closed = [p for p, e in closed.items()
                   if e.get("BYTES") == str(sent[p]) and int(e.get("DURATION_USEC", 0)) > 0
                   and p in opened and e.get("CHILD_PID") == opened[p].get("CHILD_PID")
                   and e.get("REMOTE_ADDR") == opened[p].get("REMOTE_ADDR")]
    if not check(len(good_closed) == len(sent),
                 f"journalctl -u echo.service: a connection-closed event (BYTES, "
                 f"DURATION_USEC, the same CHILD_PID and REMOTE_ADDR) for each of {len(sent)} "
                 f"connections: {len(good_closed)}"):
        unattributed = [e for e in (json.loads(line) for line in c.run(
            "journalctl", "--no-pager", "-o", "json", f"MESSAGE_ID={MSG_CLOSED}")
            .stdout.splitlines()) if e.get("REMOTE_PORT") in sent and "_SYSTEMD_UNIT" not in e]
        log(f"  {len(unattributed)} of them are in the journal without _SYSTEMD_UNIT (the "
            "child exited before journald looked up its cgroup), e.g.:\n  "
            + (json.dumps(unattributed[0]) if unattributed else "none"))
    check(any(e.get("MESSAGE_ID") == MSG_LISTENING for e in journal_entries(c)),
          "listening event logged at start")
    explained = journal(c, "-x")
    check("forked child process" in explained and "Defined-By: echod" in explained,
          "journalctl -x shows the catalog's explanation", explained[-2000:])


# The checks, in the order they run (e2e.py runs the modules in order).
CHECKS = [
    check_debug_journal,
]
