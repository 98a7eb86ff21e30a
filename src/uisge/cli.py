"""The `uisge` command: argv and environment to configuration to the action asked for.

The only place where errors become exit codes: 0 ok, 1 configuration or usage error, 22 app failed to
load (as uWSGI's UWSGI_FAILED_APP_CODE). It must not parse options itself (config/ does) nor serve
requests (the server modules do).
"""

from __future__ import annotations

import os
import sys

from uisge import __version__
from uisge.config.load import ConfigError, Options, load
from uisge.config.registry import Status

EXIT_CONFIG = 1
EXIT_APP = 22


def _print_messages(messages, stream) -> None:
    for message in messages:
        stream.write(f"uisge: {message.level}: {message}\n")


def _load(args: list[str], first_index: int) -> Options | None:
    try:
        return load(args, os.environ, first_index=first_index)
    except ConfigError as exc:
        errors = [m for m in exc.messages if m.level == "error"]
        _print_messages(exc.messages, sys.stderr)
        sys.stderr.write(f"uisge: {len(errors)} configuration error{'s' if len(errors) != 1 else ''}; "
                         f"nothing was started\n")
        return None


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    first_index = 1
    mode = "serve"
    if args and args[0] == "top":
        from uisge.top import main as top

        return top(args[1:])
    if args and args[0] == "check":
        mode, args, first_index = "check", args[1:], 2
    show_all = False
    if mode == "check" and "--all" in args:
        show_all = True
        args.remove("--all")
    if not args and mode == "serve":
        sys.stderr.write("uisge: nothing to do: give a config file or options (e.g. `uisge --http :8000 "
                         "--wsgi-file app.py`); `uisge --help` lists every option\n")
        return EXIT_CONFIG
    opts = _load(args, first_index)
    if opts is None:
        return EXIT_CONFIG
    if opts.exit_code is not None and mode != "check":
        return opts.exit_code  # config logic reached `exit`: nothing runs, as in uWSGI
    names = [action.name for action, _, _ in opts.actions]
    if "help" in names:
        from uisge.config.report import help_text

        sys.stdout.write(help_text())
        return 0
    if "version" in names:
        sys.stdout.write(f"uisge {__version__}\n")
        return 0
    if mode == "check" or "check" in names:
        from uisge.config.report import check_text

        sys.stdout.write(check_text(opts, show_all=show_all))
        return 0
    for text in opts.print:  # `print`: after the configuration is read, before anything starts (uWSGI's order)
        sys.stdout.write(text + "\n")
    sys.stdout.flush()
    if opts.show_config:
        from uisge.config.report import show_config_text

        sys.stderr.write(show_config_text(opts))
    for action, value, origin in opts.actions:
        if action.status is Status.PLANNED:
            sys.stderr.write(f"uisge: `--{action.name}` ({origin}) is not implemented yet (issue #{action.issue})\n")
            return EXIT_CONFIG
        return _run_action(action.name, value, opts)
    _print_messages(opts.notices() + opts.warnings(), sys.stderr)
    from uisge.server import serve

    return serve(opts, args)


def _run_action(name: str, value, opts=None) -> int:
    if name == "pyrun":
        return _pyrun(str(value), opts)
    if name in ("stop", "reload", "pause"):
        from uisge.master import control

        return control.run(name, str(value))
    if name == "connect-and-read":
        from uisge.master import control

        return control.connect_and_read(value)
    sys.stderr.write(f"uisge: `--{name}` is not available\n")
    return EXIT_CONFIG


def _pyrun(path: str, opts) -> int:
    """`--pyrun FILE`: the script runs as __main__ with the `uwsgi` module importable: in this process, or,
    when a master has spoolers or mules to run beside it (uWSGI's command mode), in the instance's one worker;
    the instance ends when the script does, with its exit code."""
    from dataclasses import replace

    from uisge import compat
    from uisge.tasks.runtime import RT

    from uisge.tasks import cache, sharedarea

    if opts.master and (opts.spooler or opts.mule):
        from uisge.server import serve

        RT.command = path
        values = {**opts.values, "processes": 1, "threads": 1, "socket": (), "http-socket": (), "http": (),
                  "cheaper": 0}
        return serve(replace(opts, values=values), [])

    RT.opts = opts
    RT.caches = cache.from_options(opts)  # t/cachebitmap.ini and t/sharedarea/ run their unittests this way
    RT.sharedareas = sharedarea.from_options(opts)
    compat.install()
    return run_script(path)


def run_script(path: str) -> int:
    """Run a `pyrun` script as Python would run it: __main__, sys.argv[0] and its directory first on sys.path
    (so it imports its neighbours, as uWSGI's t/python/spooler_* scripts do); its exit code."""
    import runpy

    sys.argv = [path]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except FileNotFoundError:
        sys.stderr.write(f"uisge --pyrun {path}: no such file\n")
        return EXIT_CONFIG
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
