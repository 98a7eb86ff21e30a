"""uWSGI signals and timer registrations arriving at the master (reference §7.2): from the master's own
import-time calls and from workers, mules and spoolers over the master channel; each signal goes to its
registered target (a worker, all workers, a mule, the spooler, a farm). Never blocks: a full queue is
logged and the signal dropped, as uWSGI does.
"""

from __future__ import annotations

import json

from uisge.logfile import say
from uisge.master import birth
from uisge.tasks.runtime import RT


def absorb(master) -> None:
    """Signals raised and timers registered inside the master itself (e.g. at app import)."""
    pending, RT.pending = RT.pending, []
    for entry in pending:
        registration(master, entry)


def on_message(master) -> None:
    channel = RT.channels["master"]
    for _ in range(256):
        message = channel.receive()
        if message is None:
            return
        if message[:1] != b"J":
            continue
        try:
            registration(master, json.loads(message[1:]))
        except (ValueError, KeyError, TypeError) as exc:
            say(f"[uwsgi-signal] bad request to the master ignored: {exc}")


def registration(master, entry: dict) -> None:
    op = entry["op"]
    if op == "register":
        RT.targets[int(entry["num"])] = str(entry.get("target", ""))
    elif op == "signal":
        route(master, int(entry["num"]), entry.get("target"))
    else:
        master.scheduler.add(entry)


def route(master, num: int, target: str | None) -> None:
    """Deliver uWSGI signal `num` to its target (reference §7.2)."""
    if target is None:
        # a signal nobody registered still goes to a worker, as on uWSGI: one waiting in uwsgi.signal_wait()
        # takes it; any other says it has no handler for it
        target = RT.targets.get(num, "")
    message = b"s" + bytes([num])
    channels = RT.channels
    ok = True
    if target in ("", "worker", "worker0"):
        ok = channels["workers"].send(message)
    elif target in ("workers", "active-workers"):
        for child in master.current():
            birth.send(child.ctl, b"S" + bytes([num]))
    elif target.startswith("worker") and target[6:].isdigit():
        wid = int(target[6:])
        for child in master.current():
            if child.wid == wid:
                birth.send(child.ctl, b"S" + bytes([num]))
    elif target in ("mule", "mule0"):
        ok = channels["mule0"].send(message)
    elif target == "mules":
        for mule_id, _ in master.mules:
            ok = channels[f"mule{mule_id}"].send(message) and ok
    elif target.startswith("mule") and target[4:].isdigit() and f"mule{target[4:]}" in channels:
        ok = channels[f"mule{target[4:]}"].send(message)
    elif target == "spooler":
        for directory in (d for d in RT.spooler_dirs if d not in RT.external_spoolers):
            ok = channels[f"spooler:{directory}"].send(message) and ok
    elif target.startswith("farm_") and f"farm:{target[5:]}" in channels:
        ok = channels[f"farm:{target[5:]}"].send(message)
    elif target == "subscribed":
        return
    else:
        say(f"[uwsgi-signal] signal {num}: unknown target {target!r} (targets: worker, workers, workerN, mule, "
            f"mules, muleN, spooler, farm_NAME)")
        return
    if not ok:
        say(f"*** SIGNAL QUEUE IS FULL: signal {num} for {target or 'any worker'} dropped ***")
