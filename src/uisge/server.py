"""Start serving: the log, detaching, the listening sockets, privileges, the app, then the master (or,
without `master`, one process that serves on its own, as uWSGI does).

Order matters and is uWSGI's: bind as root, drop to `uid`/`gid`, then load the app. Sockets come from
a previous master image (reload), from systemd (socket activation), or are bound here. This module
decides the order; it does not parse requests (worker/) or supervise (master/).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import traceback

from uisge import __version__, limits, logfile
from uisge.config.convert import Address
from uisge.errors import AppLoadError, UisgeError
from uisge.master import birth, daemon, notify, pidfile, privileges, procname
from uisge.master.listeners import bind, somaxconn, vacuum
from uisge.master.master import PREFLIGHT_ENV, REEXEC_ENV, Master
from uisge.tasks import instance
# imported here, as root, before `uid`/`gid` drop privileges: afterwards the package may be unreadable
from uisge.compat import uwsgi as _uwsgi_module  # noqa: F401
from uisge.tasks import daemons as _daemons, mule as _mule, scheduler as _scheduler, spooler as _spooler  # noqa: F401
from uisge.worker.kind import worker_class
from uisge.worker.loop import Listener
from uisge.wsgi.adapter import FileWrapper
from uisge.wsgi.environ import base_environ
from uisge.wsgi.loader import load_apps, prepare_environment

EXIT_CONFIG = 1
EXIT_APP = 22


say = logfile.say


def _specs(opts) -> list[tuple[str, str, Address]]:
    specs = [("http", "http", a) for a in opts.http] + [("http-socket", "http", a) for a in opts.http_socket]
    socket_proto = "http" if opts.protocol in ("http", "http11") else "uwsgi"
    return specs + [("socket", socket_proto, a) for a in opts.socket]


def _same_address(sock: socket.socket, addr: Address) -> bool:
    try:
        bound = sock.getsockname()
    except OSError:
        return False
    if addr.family == "unix":
        return isinstance(bound, str) and os.path.abspath(bound) == os.path.abspath(addr.path)
    if not isinstance(bound, tuple):
        return False
    host = addr.host or ("::" if addr.family == "inet6" else "0.0.0.0")
    return bound[1] == addr.port and bound[0].removeprefix("::ffff:") in (host, "::" if host == "0.0.0.0" else host)


def _listeners(opts, inherited: list[list]) -> list[Listener]:
    backlog = opts.listen
    limit = somaxconn()
    if limit is not None and backlog > limit and not inherited:
        say(f"*** WARNING: listen = {backlog} ({opts.origin('listen')}) is above net.core.somaxconn ({limit}); "
            f"the kernel caps the backlog at {limit}. Raise it with `sysctl -w net.core.somaxconn={backlog}` ***")
    out: list[Listener] = []
    hostname = socket.gethostname()
    wrapper = None if opts.wsgi_disable_file_wrapper else FileWrapper
    multithread = opts.threads > 1
    multiprocess = opts.processes > 1
    origins = {name: iter(opts.origins.get(name, ())) for name in ("http", "http-socket", "socket")}
    from_master = {(option, text): (fd, name) for option, text, fd, name in inherited}
    from_systemd = notify.activated_sockets()
    for option, proto, addr in _specs(opts):
        origin = str(next(origins[option], "default"))
        how = "bound to"
        if (option, addr.text) in from_master:
            fd, name = from_master.pop((option, addr.text))
            sock = socket.socket(fileno=fd)
            how = "inherited"
        else:
            activated = next((s for s in from_systemd if _same_address(s, addr)), None)
            if activated is not None:
                from_systemd.remove(activated)
                sock, name, how = activated, addr.text, "from systemd"
            else:
                sock, name = bind(addr, option, origin, backlog, opts)
        port = name.rpartition(":")[2] if addr.family != "unix" else "80"
        base = base_environ(hostname, port, multithread, multiprocess, wrapper)
        if option == "http":
            base.update(opts.http_var)  # what uWSGI's HTTP router adds to each request it passes on
        kind = "HTTP" if proto == "http" else "uwsgi"
        say(f"{kind} socket {len(out)} {how} {name} fd {sock.fileno()} ({option} = {addr.text}, {origin})")
        path = addr.path if addr.family == "unix" and not addr.path.startswith("@") and not opts.abstract_socket else None
        out.append(Listener(sock, proto, name, base, option=option, address=addr.text, path=path))
    for fd, name in from_master.values():
        say(f"closing inherited socket {name} (fd {fd}): no longer in the configuration")
        os.close(fd)
    for sock in from_systemd:
        say(f"socket from systemd {sock.getsockname()!r} matches no `http`, `http-socket` or `socket` "
            f"address; closed")
        sock.close()
    return out


def _load_apps(opts):
    """The apps, or None after saying why they did not load."""
    sys.argv = ["uwsgi", *(opts.pyargv or "").split()]  # what apps see, as under uWSGI (not our command line)
    try:
        for module in (*opts.get("import"), *opts.shared_import):
            _import(module)
        apps = load_apps(opts)
    except AppLoadError as exc:
        if exc.detail:
            sys.stderr.write(exc.detail)
        say(f"uisge: {exc}")
        if not opts.need_app:
            return _no_app()
        say("*** no app loaded. GAME OVER *** (exit code 22)")
        return None
    if not apps:
        if not opts.need_app or _other_work(opts):
            return _no_app()
        say("uisge: no app configured: set `wsgi-file = app.py` or `module = package.wsgi:application` (or "
            "`need-app = false` for an instance that serves only static files, mules or a spooler)")
        return None
    for mountpoint, _app in apps:
        say(f"WSGI app 0 (mountpoint='{mountpoint}') ready in pid {os.getpid()}")
    if opts.chdir2:
        try:
            os.chdir(opts.chdir2)
        except OSError as exc:
            say(f"uisge: chdir2 = {opts.chdir2} ({opts.origin('chdir2')}): {exc.strerror}; create the directory "
                f"or fix the path")
            return None
        say(f"chdir() to {opts.chdir2}")
    return apps


def _other_work(opts) -> bool:
    """No app is configured, but the instance has work of its own: mules, a spooler, static files, daemons or
    crons (uWSGI's own t/mules and tests/mule_file.py run so). Only an app that fails to load stops start-up."""
    return bool(opts.mule or opts.mules or opts.spooler or opts.static_map or opts.static_map2
                or opts.attach_daemon or opts.cron)


def _no_app() -> list:
    """`need-app = false` and no app: serve on (static-map, mules, spoolers), as uWSGI's "full dynamic mode";
    a request that reaches the app gets a 500 and a log line saying why."""
    say("*** no app loaded. going in full dynamic mode ***")

    def no_app(environ, start_response):
        sys.stderr.write("--- no python application found, check your startup logs for errors ---\n")
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"Internal Server Error: no Python application is loaded (see the server log)\n"]

    return [("", no_app)]


def _import(module: str) -> None:
    """`import` / `shared-import`: a module (or a .py file) imported before the app, e.g. for its decorators."""
    import importlib
    import runpy

    try:
        if module.endswith(".py"):
            runpy.run_path(module, run_name=os.path.splitext(os.path.basename(module))[0])
        else:
            importlib.import_module(module)
    except Exception as exc:
        raise AppLoadError(f"`import = {module}` failed: {type(exc).__name__}: {exc}",
                           traceback.format_exc()) from None


def _preflight(opts) -> int:
    """Reload check, run by the master in a separate process: do the config and the app load?"""
    try:
        for line in prepare_environment(opts):
            say(line)
        instance.prepare(opts)
    except (UisgeError, AppLoadError) as exc:
        say(f"uisge: {exc}")
        return EXIT_CONFIG
    return 0 if _load_apps(opts) is not None else EXIT_APP


def serve(opts, argv: list[str]) -> int:
    start_cwd = os.getcwd()
    reexec = json.loads(os.environ.pop(REEXEC_ENV, "null"))
    if os.environ.pop(PREFLIGHT_ENV, None):
        return _preflight(opts)
    from uisge.tasks.runtime import RT

    if not (opts.http or opts.http_socket or opts.socket or RT.command):
        say("uisge: no address to serve on: add `http = :8000` (browsers), `socket = 127.0.0.1:3031` (nginx "
            "uwsgi_pass) or `http-socket = :8000`")
        return EXIT_CONFIG
    if opts.tasks_backend_locks and not opts.tasks_backend:
        say(f"uisge: tasks-backend-locks ({opts.origin('tasks-backend-locks')}) makes the locks group-wide through "
            f"the tasks-backend, and no tasks-backend is set: add `tasks-backend = redis://HOST:PORT/DB`, or "
            f"remove it")
        return EXIT_CONFIG
    if opts.tasks_backend:
        from uisge.tasks.group import check_url

        problem = check_url(opts.tasks_backend)
        if problem is None:
            try:
                import redis  # noqa: F401
            except ImportError:
                problem = "it needs the redis package: pip install 'uisge[redis]'"
        if problem:
            say(f"uisge: tasks-backend = {opts.tasks_backend} ({opts.origin('tasks-backend')}): {problem}")
            return EXIT_CONFIG
    try:
        logfile.check_loggers(opts)
    except UisgeError as exc:
        say(f"uisge: {exc}")
        return EXIT_CONFIG
    if opts.cheaper:
        from uisge.master import cheaper

        problem = cheaper.check(cheaper.Settings.from_options(opts))
        if problem:
            say(f"uisge: {problem}")
            return EXIT_CONFIG
    if opts.umask is not None:
        os.umask(opts.umask)
    ready_fd = None
    logfile.set_date(opts.log_date)
    log_path = logfile.early_path(opts)
    detach = bool(opts.daemonize or opts.daemonize2) and reexec is None
    try:
        if log_path:
            terminal = os.dup(2)
            option = "daemonize" if opts.daemonize else ("daemonize2" if opts.daemonize2 else "logto")
            logfile.open_log(log_path, truncate=bool(opts.log_truncate) and reexec is None, option=option)
            if detach and opts.daemonize:
                ready_fd = daemon.detach(log_path, terminal)
            elif not (detach and opts.daemonize2):
                os.close(terminal)
    except UisgeError as exc:
        say(f"uisge: {exc}")
        return EXIT_CONFIG
    say(f"*** Starting uisge {__version__} (Python {sys.version.split()[0]}) pid {os.getpid()} ***")
    try:
        for line in prepare_environment(opts):
            say(line)
        request_log = logfile.logger(opts.req_logger, "req-logger")[0]
        if request_log:
            logfile.open_request_log(request_log)  # before dropping privileges, as the main log
        if opts.max_fd:
            say(limits.set_fd_limit(opts.max_fd, opts.origin("max-fd")))  # before binding, forking, dropping
        listeners = _listeners(opts, reexec["listeners"] if reexec else [])
        if opts.pidfile and reexec is None and not (detach and opts.daemonize2):
            pidfile.write(opts.pidfile, os.getpid())  # before dropping privileges: /run is root's
        for line in privileges.drop(opts):
            say(line)
        if opts.logto2 and not log_path:  # opened as the user we dropped to
            logfile.open_log(opts.logto2, truncate=bool(opts.log_truncate) and reexec is None, option="logto2")
        if opts.pidfile2 and reexec is None and not (detach and opts.daemonize2):
            pidfile.write(opts.pidfile2, os.getpid())
        instance.prepare(opts, reexec.get("tasks") if reexec else None)
    except (UisgeError, AppLoadError) as exc:
        say(f"uisge: {exc}")
        return EXIT_CONFIG
    from uisge.worker.static import StaticFiles

    StaticFiles(opts, say, announce=True)  # says which maps are in effect, once
    lazy = opts.master and (opts.lazy_apps or opts.lazy)
    apps = None
    if not lazy:
        apps = _load_apps(opts)
        if apps is None:
            return EXIT_APP
    if detach and opts.daemonize2:
        ready_fd = daemon.detach(log_path, terminal)
        try:
            for path in (opts.pidfile, opts.pidfile2):
                if path:
                    pidfile.write(path, os.getpid())
        except UisgeError as exc:
            say(f"uisge: {exc}")
            return EXIT_CONFIG
    mode = "preforking" if opts.processes > 1 else "single process"
    if opts.threads > 1:
        mode += "+threaded" if opts.processes > 1 else " threaded"
    if RT.command:
        mode = "command"
    say(f"*** Operational MODE: {mode} ***")
    if opts.master:
        master = Master(opts, listeners, apps, lambda: _load_apps(opts), argv, start_cwd,
                        adopted=reexec["workers"] if reexec else None,
                        generation=(reexec["generation"] + 1) if reexec else 1, ready_fd=ready_fd,
                        board_fd=reexec.get("board") if reexec else None,
                        carried=reexec.get("scheduler") if reexec else None)
        if reexec and reexec.get("brutal"):
            master.preflight_brutal = True
        return master.run()
    if opts.processes <= 1:
        say(f"spawned uisge worker 1 (and the only) (pid: {os.getpid()}, cores: {opts.threads})")
        procname.set_title(opts, "worker 1")
        notify.notify("READY=1", "STATUS=serving")
        daemon.say_ready(ready_fd)
        try:
            return worker_class(apps, opts.interface)(opts, listeners, apps, 1).run()
        finally:
            vacuum(opts, listeners)
    daemon.say_ready(ready_fd)
    try:
        return _fork_workers(opts, listeners, apps)
    finally:
        vacuum(opts, listeners)


def _fork_workers(opts, listeners, apps) -> int:
    """Without a master (uWSGI's behaviour): fork the workers, forward stop signals, never respawn."""
    children: dict[int, int] = {}
    for wid in range(1, opts.processes + 1):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = worker_class(apps, opts.interface)(opts, listeners, apps, wid).run()
            except BaseException:  # noqa: BLE001
                traceback.print_exc()
            finally:
                birth.leave(code)
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
            say(f"worker {wid} (pid: {pid}) exited with {code}; without `master = true` nobody respawns it")
    say("goodbye to uisge.")
    return 0
