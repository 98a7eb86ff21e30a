"""Start serving: bind listeners, load the app, run the worker(s).

This is the interim process model until the master lands (issue #4): one worker serves in this
process, or with `processes > 1` this process forks the workers, forwards SIGINT/SIGTERM/SIGHUP to
them and waits. No respawn, no reload yet. It must not parse requests (worker/ does).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import traceback

from uisge import __version__
from uisge.errors import AppLoadError, UisgeError
from uisge.master.listeners import bind, somaxconn
from uisge.worker.loop import Listener, Worker
from uisge.worker.respond import FileWrapper
from uisge.wsgi.environ import base_environ
from uisge.wsgi.loader import load_apps, prepare_environment

EXIT_CONFIG = 1
EXIT_APP = 22


def say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _listeners(opts) -> list[Listener]:
    backlog = opts.listen
    limit = somaxconn()
    if limit is not None and backlog > limit:
        say(f"*** WARNING: listen = {backlog} ({opts.origin('listen')}) is above net.core.somaxconn ({limit}); "
            f"the kernel caps the backlog at {limit}. Raise it with `sysctl -w net.core.somaxconn={backlog}` ***")
    out: list[Listener] = []
    hostname = socket.gethostname()
    wrapper = None if opts.wsgi_disable_file_wrapper else FileWrapper
    multithread = opts.threads > 1
    multiprocess = opts.processes > 1
    specs = [("http", "http", a) for a in opts.http] + [("http-socket", "http", a) for a in opts.http_socket]
    socket_proto = "http" if opts.protocol in ("http", "http11") else "uwsgi"
    specs += [("socket", socket_proto, a) for a in opts.socket]
    origins = {name: iter(opts.origins.get(name, ())) for name in ("http", "http-socket", "socket")}
    for option, proto, addr in specs:
        origin = str(next(origins[option], "default"))
        sock, name = bind(addr, option, origin, backlog, opts)
        port = name.rpartition(":")[2] if addr.family != "unix" else "80"
        base = base_environ(hostname, port, multithread, multiprocess, wrapper)
        kind = "HTTP" if proto == "http" else "uwsgi"
        say(f"{kind} socket {len(out)} bound to {name} fd {sock.fileno()} ({option} = {addr.text}, {origin})")
        out.append(Listener(sock, proto, name, base))
    return out


def serve(opts) -> int:
    say(f"*** Starting uisge {__version__} (Python {sys.version.split()[0]}) pid {os.getpid()} ***")
    if not (opts.http or opts.http_socket or opts.socket):
        say("uisge: no address to serve on: add `http = :8000` (browsers), `socket = 127.0.0.1:3031` (nginx "
            "uwsgi_pass) or `http-socket = :8000`")
        return EXIT_CONFIG
    try:
        for line in prepare_environment(opts):
            say(line)
        listeners = _listeners(opts)
    except (UisgeError, AppLoadError) as exc:
        say(f"uisge: {exc}")
        return EXIT_CONFIG
    try:
        apps = load_apps(opts)
    except AppLoadError as exc:
        if exc.detail:
            sys.stderr.write(exc.detail)
        say(f"uisge: {exc}")
        say("*** no app loaded. GAME OVER *** (exit code 22)")
        return EXIT_APP
    if not apps:
        say("uisge: no app configured: set `wsgi-file = app.py` or `module = package.wsgi:application`")
        return EXIT_APP if opts.need_app else EXIT_CONFIG
    for mountpoint, _app in apps:
        say(f"WSGI app 0 (mountpoint='{mountpoint}') ready, pid: {os.getpid()} (default app)")
    mode = "preforking" if opts.processes > 1 else "single process"
    if opts.threads > 1:
        mode += "+threaded" if opts.processes > 1 else " threaded"
    say(f"*** Operational MODE: {mode} ***")
    if opts.processes <= 1:
        say(f"spawned uisge worker 1 (and the only) (pid: {os.getpid()}, cores: {opts.threads})")
        return Worker(opts, listeners, apps, 1).run()
    return _fork_workers(opts, listeners, apps)


def _fork_workers(opts, listeners, apps) -> int:
    children: dict[int, int] = {}
    for wid in range(1, opts.processes + 1):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = Worker(opts, listeners, apps, wid).run()
            except BaseException:  # noqa: BLE001
                traceback.print_exc()
            finally:
                os._exit(code)
        children[pid] = wid
        say(f"spawned uisge worker {wid} (pid: {pid}, cores: {opts.threads})")

    def forward(signum, frame):
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, forward)
    for listener in listeners:
        listener.sock.close()
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        wid = children.pop(pid, "?")
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            say(f"worker {wid} (pid: {pid}) exited with {code}; no respawn until the master lands (issue #4)")
    say("goodbye to uisge.")
    return 0
