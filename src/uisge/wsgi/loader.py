"""Find and import the WSGI application(s): `wsgi-file`, `module`, `callable`, `mount`, with `chdir`,
`pythonpath`, `env` and `home` applied first, as uWSGI does.

Errors become AppLoadError with a message that tells "module not found" apart from "failed while
importing" and names what to change. It must not bind sockets or fork.
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import sys
import traceback
from typing import Any, Callable

from uisge.asgi.detect import interface
from uisge.errors import AppLoadError

WSGIApp = Callable[..., Any]


def prepare_environment(opts) -> list[str]:
    """Apply env/unenv, chdir, home and pythonpath. Returns log lines."""
    log: list[str] = []
    for name, value in opts.env:
        os.environ[name] = value
    for name in opts.unenv:
        os.environ.pop(name, None)
    if opts.chdir:
        try:
            os.chdir(opts.chdir)
        except OSError as exc:
            raise AppLoadError(f"chdir = {opts.chdir} ({opts.origin('chdir')}): {exc.strerror}; create the "
                               f"directory or fix the path") from None
        log.append(f"chdir() to {opts.chdir}")
    if opts.home:
        log.extend(_use_virtualenv(opts.home, opts.origin("home")))
    if "." not in sys.path and "" not in sys.path:
        sys.path.insert(0, ".")
    for entry in opts.pythonpath:
        paths = sorted(glob.glob(entry)) or [entry]
        for path in paths:
            sys.path.insert(0, path)
            log.append(f"added {path} to pythonpath.")
    return log


def _use_virtualenv(home: str, origin: str) -> list[str]:
    home = os.path.abspath(home)
    if not os.path.isdir(home):
        raise AppLoadError(f"home = {home} ({origin}) is not a directory; point it at the virtualenv (the "
                           f"folder holding bin/python and pyvenv.cfg)")
    mine = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = os.path.join(home, "lib", mine, "site-packages")
    if os.path.isdir(site):
        import site as site_module

        site_module.addsitedir(site)
        return [f"virtualenv {home}: using {site}"]
    others = sorted(glob.glob(os.path.join(home, "lib", "python3*", "site-packages")))
    if others and not os.environ.get("UISGE_REEXEC"):
        uisge = os.path.join(home, "bin", "uisge")
        if os.access(uisge, os.X_OK):
            os.environ["UISGE_REEXEC"] = "1"
            sys.stderr.write(f"virtualenv {home} holds another Python; re-executing {uisge}\n")
            sys.stderr.flush()
            os.execv(uisge, [uisge, *sys.argv[1:]])
        found = os.path.basename(os.path.dirname(others[0]))
        raise AppLoadError(
            f"home = {home} ({origin}) is a virtualenv for {found}, but uisge runs on {mine}; install uisge "
            f"into it (`{home}/bin/pip install uisge`) and start `{home}/bin/uisge`, or recreate the virtualenv "
            f"with {mine}")
    raise AppLoadError(f"home = {home} ({origin}) has no lib/python3.*/site-packages; is it a virtualenv?")


def _module_error(module: str, exc: BaseException) -> AppLoadError:
    if isinstance(exc, ModuleNotFoundError) and exc.name and (module == exc.name or module.startswith(exc.name + ".")):
        return AppLoadError(
            f"module {module!r} not found: no {exc.name.replace('.', '/')}.py or package {exc.name!r} on the "
            f"Python path (current directory {os.getcwd()}); set `chdir` to the project directory or add it "
            f"with `pythonpath`")
    detail = traceback.format_exc()
    return AppLoadError(f"module {module!r} failed while importing: {type(exc).__name__}: {exc}", detail)


def _callable_of(mod: Any, name: str, where: str) -> WSGIApp:
    factory = name.endswith("()")
    attr = name[:-2] if factory else name
    obj = getattr(mod, attr, None)
    if obj is None:
        found = [k for k, v in vars(mod).items() if callable(v) and not k.startswith("_")
                 and not isinstance(v, type(sys))][:8]
        hint = f" (callables there: {', '.join(found)})" if found else ""
        raise AppLoadError(f"unable to find {attr!r} callable in {where}{hint}; set `callable` or write "
                           f"module:name")
    if factory:
        try:
            obj = obj()
        except Exception as exc:
            raise AppLoadError(f"{attr}() in {where} raised {type(exc).__name__}: {exc}",
                               traceback.format_exc()) from None
    if not callable(obj):
        raise AppLoadError(f"{attr!r} in {where} is a {type(obj).__name__}, not a WSGI callable")
    return obj


def load_file(path: str, callable_name: str) -> WSGIApp:
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise AppLoadError(f"wsgi-file {path!r} not found (looked for {full}; current directory {os.getcwd()})")
    name = "uwsgi_file_" + full.replace("/", "_").replace(".", "_").removesuffix("_py")
    spec = importlib.util.spec_from_file_location(name, full)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException as exc:  # noqa: BLE001 - the traceback is the message
        sys.modules.pop(name, None)
        if isinstance(exc, SystemExit):
            raise AppLoadError(f"wsgi-file {path} called sys.exit({exc.code}) while importing") from None
        raise AppLoadError(f"wsgi-file {path} failed while importing: {type(exc).__name__}: {exc}",
                           traceback.format_exc()) from None
    return _callable_of(mod, callable_name, f"file {path}")


def load_module(spec: str, default_callable: str) -> WSGIApp:
    module, _, name = spec.partition(":")
    try:
        mod = importlib.import_module(module)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, SystemExit):
            raise AppLoadError(f"module {module!r} called sys.exit({exc.code}) while importing") from None
        raise _module_error(module, exc) from None
    return _callable_of(mod, name or default_callable, f"module {module}")


def load_target(target: str, default_callable: str) -> WSGIApp:
    if target.endswith((".py", ".wsgi")) or os.sep in target and ":" not in target:
        return load_file(target, default_callable)
    return load_module(target, default_callable)


def load_apps(opts) -> list[tuple[str, WSGIApp]]:
    """[(mountpoint, app)]; the first is the default app. Empty when nothing is configured.
    `callable-factory`: each callable found is called once (no arguments) and what it returns is the app."""
    apps: list[tuple[str, WSGIApp]] = []
    name = opts.callable
    if opts.callable_factory and not name.endswith("()"):
        name += "()"
    if opts.wsgi_file:
        apps.append(("", load_file(opts.wsgi_file, name)))
    if opts.module:
        module, _, attr = opts.module.partition(":")
        apps.append(("", load_module(f"{module}:{_factory(attr, opts)}" if attr else module, name)))
    for mountpoint, target in opts.mount:
        module, colon, attr = target.partition(":")
        if colon and not target.endswith((".py", ".wsgi")):
            target = f"{module}:{_factory(attr, opts)}"
        # kept as written (`/foo/` stays `/foo/`: uWSGI gives it as SCRIPT_NAME); `/` is the root, ""
        apps.append((mountpoint if mountpoint.rstrip("/") else "", load_target(target, name)))
    kinds = {interface(app, opts.interface) for _, app in apps}
    if len(kinds) > 1:
        raise AppLoadError("the apps mix WSGI and ASGI callables: one instance serves one kind (its workers run "
                           "either plain calls or an asyncio loop); run the two kinds as two instances")
    return apps


def _factory(attr: str, opts) -> str:
    return attr + "()" if opts.callable_factory and attr and not attr.endswith("()") else attr
