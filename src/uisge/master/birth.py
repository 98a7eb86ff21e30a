"""What a process forked by the master does before it serves: drop what only the master may hold, become a
worker (load the app if lazy, run the worker loop) or a mule or spooler, and never return into the
master's loop. Also the fork with its control socketpair, and `uwsgi.workers()` read off the scoreboard.
Runs in the child; it decides nothing about when to fork (master/policy.py does).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import traceback

from uisge import logfile
from uisge.logfile import say
from uisge.master import procname
from uisge.master.scoreboard import Board
from uisge.tasks.runtime import RT
from uisge.worker.health import PAGE
from uisge.worker.kind import worker_class

EXIT_APP = 22
FORWARDED = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1}


def close_inherited(master) -> None:
    """In a freshly forked child: drop what only the master may hold."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1,
                signal.SIGTSTP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    master.sel.close()
    for child in (*master.children.values(), *master.aux.values()):
        child.ctl.close()
    for fifo in master.fifos:
        fifo.close(remove=False)
    os.close(master.wake_r)
    os.close(master.wake_w)
    if master.stats is not None:
        for sock, _, _ in master.stats.socks:
            sock.close()


def become_worker(master, wid: int, ctl: socket.socket, slot: int) -> None:
    code = 1
    try:
        close_inherited(master)
        RT.become("worker", worker_id=wid)
        RT.control = ctl
        procname.set_title(master.opts, f"worker {wid}")
        apps = master.apps
        if apps is None:
            apps = master.load_apps()
            if apps is None:
                os._exit(EXIT_APP)
        from uisge.compat import uwsgi as uwsgi_module

        post_fork(uwsgi_module)
        if master.board is not None:
            board_reader = master.board
            mounts = tuple(mountpoint for mountpoint, _app in apps)
            RT.workers_info = lambda: workers_info(board_reader, mounts)
            RT.total_requests = lambda: sum(w["requests"] for w in workers_info(board_reader, mounts))
        if RT.command:  # command mode: this worker runs the `pyrun` script, and its end is the instance's
            from uisge.cli import run_script

            code = run_script(RT.command)
            return
        reopen = (lambda: logfile.reopen(master.log_path)) if master.log_path else None
        board = master.board.writer(slot, wid) if master.board is not None else None
        code = worker_class(apps, master.opts.interface)(master.opts, master.listeners, apps, wid, control=ctl, reopen_log=reopen,
                                  board=board).run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - a worker must never return into the master's loop
        traceback.print_exc()
    finally:
        leave(code)


def become_aux(master, kind: str, number: int, ctl: socket.socket) -> None:
    code = 1
    try:
        close_inherited(master)
        for listener in master.listeners:
            listener.sock.close()
        from uisge.compat import uwsgi as uwsgi_module

        if kind == "mule":
            from uisge.tasks.mule import CURRENT, Mule

            RT.become("mule", mule_id=number)
            procname.set_title(master.opts, f"mule {number}")
            if master.apps is None:  # lazy-apps: the mule loads the app too, for its decorators
                master.load_apps()
            post_fork(uwsgi_module)
            mule = Mule(number, dict(master.mules)[number], ctl)
            CURRENT.append(mule)
            code = mule.run()
        else:
            from uisge.tasks.spooler import Spooler

            directory, _ = master.spoolers[number]
            RT.become("spooler")
            RT.spooler_directory = directory
            procname.set_title(master.opts, "spooler")
            if master.apps is None:
                master.load_apps()
            post_fork(uwsgi_module)
            code = Spooler(master.opts, directory, RT.channels[f"spooler:{directory}"], ctl, RT.handle,
                           lambda: uwsgi_module.spooler).run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - never return into the master's loop
        traceback.print_exc()
    finally:
        leave(code)


def leave(code: int) -> None:
    """A child's end: the app's atexit handlers run (as when Python exits: uWSGI does so on a worker's graceful
    end, tests/threads_atexit.py checks it on max-requests), what print() buffered is written, then _exit, so
    that nothing of the master's (its finally blocks, its handlers) runs in the child."""
    import atexit

    try:
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001 - (it prints a handler's error itself)
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)


def fork_with_control(what: str) -> tuple[int, socket.socket, socket.socket] | None:
    """fork() with a control socketpair (the master's end, the child's end); None if fork failed."""
    master_end, child_end = socket.socketpair()
    # a stop signal landing between fork() and the child's own handlers would reach the master's
    # recording handler in the child and be lost: block them across fork(); the child unblocks them in
    # _close_inherited() once they are back to their defaults
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    try:
        pid = os.fork()
    except OSError as exc:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        say(f"fork() of {what} failed: {exc}; trying again in 1 s")
        master_end.close()
        child_end.close()
        return None
    if pid:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    return pid, master_end, child_end



def send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.send(data)
    except OSError:
        pass



def post_fork(uwsgi_module) -> None:
    """uwsgi.post_fork_hook (uwsgidecorators' @postfork chain), in every process the master forks."""
    hook = getattr(uwsgi_module, "post_fork_hook", None)
    if hook is not None:
        hook()



def workers_info(board: Board, mounts: tuple = ("",)) -> tuple:
    """uwsgi.workers(): the stats fields of every worker, read off the scoreboard, with its memory from
    /proc and its apps (uWSGI's shape; per-app counters are the worker's, uisge counts per worker)."""
    out = []
    for slot in range(board.slots):
        s = board.read(slot)
        if not s["pid"] or not s["wid"]:
            continue
        try:
            with open(f"/proc/{s['pid']}/statm") as fh:
                vsz, rss = (int(v) * PAGE for v in fh.read().split()[:2])
        except (OSError, ValueError):
            vsz = rss = 0
        apps = tuple({"id": i, "modifier1": 0, "mountpoint": mountpoint, "startup_time": 0,
                      "requests": s["requests"] if len(mounts) == 1 else 0, "exceptions": 0, "chdir": ""}
                     for i, mountpoint in enumerate(mounts))
        out.append({"id": s["wid"], "pid": s["pid"], "requests": s["requests"], "delta_requests": s["requests"],
                    "signals": 0, "exceptions": s["exceptions"], "status": b"busy" if s["in_request"] else b"idle",
                    "rss": rss, "vsz": vsz, "running_time": int(s["running_time"] * 1_000_000),
                    "last_spawn": int(s["spawned"]), "respawn_count": 0, "tx": s["tx"],
                    "avg_rt": int(s["avg_rt"] * 1_000_000), "apps": apps})
    return tuple(sorted(out, key=lambda w: w["id"]))
