"""Reloads: a graceful reload first checks in a separate process that the new code and config load, then
re-execs the master with the listening sockets and the running workers inherited; `lazy-apps` and the
workers-only reloads fork a new generation from this master instead. Old workers leave as their
replacements accept (master.py's _replace_old), so no request is refused. Chain reload: one at a time.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time

from uisge.logfile import say
from uisge.master import notify
from uisge.master.fifo import MasterFifo
from uisge.tasks import instance

REEXEC_ENV = "UISGE_REEXEC"
PREFLIGHT_ENV = "UISGE_PREFLIGHT"


def chain_reload(master) -> None:
    """Every worker replaced one at a time (reference §4.7): the recycle queue does exactly that."""
    for child in sorted(master.current(), key=lambda c: c.wid):
        master.recycle(child)


def reload_workers(master, brutal: bool) -> None:
    """A new generation of workers forked from this master (no re-exec); old ones leave as new ones
    accept. Picks up new code only with lazy-apps."""
    if master.stopping:
        return
    say("...gracefully reloading workers..." if not brutal else "...brutally reloading workers...")
    master.preflight_brutal = brutal
    master.generation += 1
    master.generation_started = time.monotonic()
    master.announced = False
    for wid in range(1, master.processes + 1):
        master.spawn(wid)


def reload(master, brutal: bool) -> None:
    if master.stopping or master.preflight is not None:
        return
    if master.opts.exit_on_reload:
        say("exit-on-reload: a reload was asked; stopping instead. GAME OVER (insert coin)")
        master.stop("graceful", "exit-on-reload")
        return
    notify.notify("RELOADING=1", "STATUS=reloading")
    if master.lazy:
        reload_workers(master, brutal)
        return
    say("...gracefully reloading: checking that the new code and config load; the workers keep serving...")
    env = dict(os.environ, **{PREFLIGHT_ENV: "1"})
    env.pop(REEXEC_ENV, None)
    master.preflight_brutal = brutal
    master.preflight = subprocess.Popen([sys.executable, "-m", "uisge", *master.argv], cwd=master.start_cwd, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def preflight_done(master) -> None:
    proc, master.preflight = master.preflight, None
    output = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
    if proc.returncode != 0:
        say(f"reload aborted: the new code or config does not load (exit code {proc.returncode}):\n"
            f"{output.rstrip()}\nthe running workers keep serving the previous version; fix it and reload "
            f"again")
        notify.notify("READY=1", "STATUS=reload failed; serving the previous version")
        return
    reexec(master)


def reexec(master) -> None:
    say("binary reloading uisge: the listening sockets and running workers stay; new workers get the new code")
    state = {
        "generation": master.generation,
        "listeners": [[l.option, l.address, l.sock.fileno(), l.name] for l in master.listeners],
        "workers": [{"wid": c.wid, "pid": c.pid, "ctl": c.ctl.fileno(), "generation": c.generation,
                     "slot": c.slot} for c in master.children.values() if c.leaving_since is None],
        "board": master.board.fd if master.board is not None else None,
        "brutal": master.preflight_brutal,
        "tasks": instance.state(),
        "scheduler": master.scheduler.state(),
    }
    master.aux_leave(graceful=True)
    # running cron commands are left running: they stay this process's children across the exec, and the
    # new master, told their pids, keeps reaping them and keeps a unique-cron from starting twice
    master.daemons.stop(float(master.opts.reload_mercy), reload=True)
    for listener in master.listeners:
        listener.sock.set_inheritable(True)
    if master.board is not None:
        os.set_inheritable(master.board.fd, True)
    if master.stats is not None:
        master.stats.close()
    for child in master.children.values():
        child.ctl.set_inheritable(True)
        child.ctl.setblocking(True)
    for fifo in master.fifos:
        fifo.close(remove=False)
    env = dict(os.environ, **{REEXEC_ENV: json.dumps(state)})
    sys.stderr.flush()
    sys.stdout.flush()
    try:
        os.chdir(master.start_cwd)
        os.execve(sys.executable, [sys.executable, "-m", "uisge", *master.argv], env)
    except OSError as exc:
        say(f"re-exec failed: {exc}; the running workers keep serving")
        for path in master.opts.master_fifo:
            fifo = MasterFifo(path)
            master.fifos.append(fifo)
            from uisge.master import commands  # (commands imports this module)

            master.sel.register(fifo.fd, selectors.EVENT_READ, lambda f=fifo: commands.on_fifo(master, f))
