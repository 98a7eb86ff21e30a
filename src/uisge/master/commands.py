"""What the master does on a POSIX signal (SIGHUP reload, SIGTERM graceful stop, SIGINT/SIGQUIT brutal
stop, SIGUSR1 stats to the log, SIGTSTP pause) and on a master FIFO letter (master/fifo.py). Turns them
into the master's stops, reloads and pauses; decides nothing else.
"""

from __future__ import annotations

import os
import signal
import time

from uisge import logfile
from uisge.errors import UisgeError
from uisge.logfile import say
from uisge.master import pidfile, reload
from uisge.master.fifo import COMMANDS, MasterFifo
from uisge.worker.runner import drain_pipe


def on_wake(master) -> None:
    drain_pipe(master.wake_r)
    signals, master.signals = master.signals, []
    for signum in signals:
        if signum == signal.SIGHUP:
            reload.reload(master, brutal=False)
        elif signum == signal.SIGTERM:
            if master.opts.sigterm_reload:
                reload.reload(master, brutal=True)
            else:
                master.stop("graceful", "SIGTERM")
        elif signum in (signal.SIGINT, signal.SIGQUIT):
            master.stop("brutal", signal.Signals(signum).name)
        elif signum == signal.SIGUSR1:
            stats(master)
        elif signum == signal.SIGTSTP:
            pause(master)


def on_fifo(master, fifo: MasterFifo) -> None:
    for letter in fifo.read():
        if letter not in COMMANDS:
            say(f"master-fifo {fifo.path}: unknown command {letter!r}; known: {''.join(sorted(COMMANDS))}")
            continue
        say(f"master-fifo {fifo.path}: {letter} ({COMMANDS[letter]})")
        if letter in "rR":
            reload.reload(master, brutal=letter == "R")
        elif letter in "qQ":
            master.stop("graceful" if letter == "q" else "brutal", f"master-fifo {letter}")
        elif letter == "c":
            reload.chain_reload(master)
        elif letter in "wW":
            reload.reload_workers(master, brutal=letter == "W")
        elif letter == "s":
            stats(master)
        elif letter in "lL":
            if master.log_path:
                if letter == "L":
                    logfile.rotate_if_big(master.log_path, 0)
                else:
                    logfile.reopen(master.log_path)
                master.broadcast(b"l")
        elif letter == "p":
            pause(master)
        elif letter in "+-":
            if master.cheaper is None:
                say(f"master-fifo {fifo.path}: {letter} changes the number of workers only with `cheaper`")
            else:
                master.cheaper_delta += 1 if letter == "+" else -1
        elif letter == "P":
            for path in (master.opts.pidfile, master.opts.pidfile2):
                if path:
                    try:
                        pidfile.write(path, os.getpid())
                    except UisgeError as exc:  # e.g. /run is root's and we dropped privileges
                        say(f"master-fifo P: {exc}")


def pause(master) -> None:
    """SIGTSTP, `uisge --pause`, master FIFO `p`: the workers stop or go back to accepting connections
    (new ones wait in the listen backlog meanwhile; requests begun are finished)."""
    master.paused = not master.paused
    if master.paused:
        say("*** PAUSE (press start to resume, if you do not have a joypad send SIGTSTP) ***")
    else:
        say("*** (SIGTSTP received) resuming workers ***")
    master.broadcast(b"p" if master.paused else b"u")


def stats(master) -> None:
    say(f"uisge master (pid: {os.getpid()}), generation {master.generation}, {len(master.children)} workers:")
    for child in sorted(master.children.values(), key=lambda c: (c.generation, c.wid)):
        state = "leaving" if child.leaving_since is not None else ("accepting" if child.ready else "starting")
        say(f"worker {child.wid} (pid: {child.pid}) generation {child.generation}: {state}, up "
            f"{time.monotonic() - child.spawned:.0f} s")
