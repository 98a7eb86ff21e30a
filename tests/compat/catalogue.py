"""Every file of uWSGI 2.0.31's t/ and tests/ trees (and examples/welcome3.py), what it is, whether it is in
scope (the Python plugin, the core, the config system), and for each one in scope: what uWSGI 2.0.31 does
with it on this machine, what uisge does, and the case in test_uwsgi_tests.py that checks both on every run.
Data, and the table made from it (`python -m tests.compat.catalogue > docs/compat.md`); test_catalogue.py
checks that every file of the sdist is here, that every case named here exists, and that the doc is fresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch

PASSES = "passes"


@dataclass(frozen=True)
class Row:
    pattern: str  # fnmatch pattern(s) over the sdist's paths, separated by spaces
    what: str
    case: str = ""  # the test function in test_uwsgi_tests.py; empty: out of scope
    uwsgi: str = PASSES  # what uWSGI 2.0.31 does here
    uisge: str = PASSES  # what uisge does
    out: str = ""  # out of scope: why

    def covers(self, path: str) -> bool:
        return any(fnmatch(path, p) for p in self.pattern.split())


SAME = "the same"
NEED_APP = "stops at start (no `application`: uisge's `need-app` is on by default, docs/deviations.md)"

ROWS: tuple[Row, ...] = (
    # ---------------------------------------------------------------- in scope: run on both servers
    Row("t/runner t/static/config.ini t/python/manage_script_name/*",
        "uWSGI's unittest runner: static-map with static-expires-uri and `need-app = false`, manage-script-name "
        "mountpoints with and without trailing slashes, hello world (its other languages skip, as for a uWSGI "
        "built without them)", "test_t_runner_hello_mountpoints_static"),
    Row("t/python/helloapp.py", "hello world", "test_app_answers_200"),
    Row("t/python/testba.py", "array, bytearray and bytes yielded", "test_app_answers_200",
        uwsgi="fails: drops the array and the bytearray (`Unhandled object from iterator`): body `ciao`",
        uisge="sends all three: `6789abcdefciao` (docs/deviations.md)"),
    Row("tests/testpy3.py", "a bytes body returned whole, from `--callable app1`", "test_app_answers_200"),
    Row("tests/testworkers.py", "start_response inside a generator; uwsgi.workers() (uWSGI#2056)",
        "test_app_answers_200"),
    Row("tests/gh-python.sh tests/gh-shared.sh tests/staticfile.py tests/testrpc.py",
        "uWSGI's CI smoke test: `--master --http --exit-on-reload --touch-reload --daemonize`, `curl -fI`, then a "
        "touch ends the instance (staticfile.py, testworkers.py, testrpc.py)", "test_gh_python_command_lines"),
    Row("tests/gh-deadlocks.sh tests/deadlocks/*",
        "a thread spinning at interpreter start (sitecustomize.py) while the master forks, under seven inis "
        "(master or not, threads, 1 or 10 workers, py-call-uwsgi-fork-hooks): the app must still answer",
        "test_gh_deadlocks_ini",
        uwsgi="passes when it starts, but often crashes at startup (a Segmentation Fault when the spinning thread "
              "prints while uWSGI initialises Python: 39 of 100 starts on a busy 2-core machine); the case then "
              "says so (xfail) instead of failing"),
    Row("tests/harakiri.py", "harakiri with harakiri-graceful-signal 31 and a graceful timeout",
        "test_harakiri_py_graceful_signal_then_kill",
        uwsgi="passes (the client's connection is cut)",
        uisge="passes (the client gets a 504 first: docs/deviations.md)"),
    Row("tests/badthread.py", "an endless loop holding the GIL; harakiri 2 kills and respawns the worker",
        "test_demo_does_what_uwsgi_does"),
    Row("tests/sigwait.py", "uwsgi.signal_wait() in @postfork, signals to all workers and to one",
        "test_sigwait_py_a_worker_waits_in_postfork_for_a_signal"),
    Row("tests/slow.py", "uwsgi.lock() serialising two workers without a master",
        "test_slow_py_lock_serialises_workers_without_a_master"),
    Row("tests/mulefunc.py", "`from uwsgidecorators import *`, @mulefunc to any mule, to mule 2, to a farm",
        "test_mulefunc_star_import_gives_uwsgi_and_runs_in_the_mules",
        uwsgi="the farm call raises `ValueError: invalid mule`",
        uisge="all three calls reach their mules"),
    Row("t/mules/signal_management.py t/mules/mulebrain.py",
        "a mule-only instance whose mule signals its master four ways (unittest)", "test_t_mules_signal_management"),
    Row("t/mules/reload.py t/spooler/reload.py",
        "touch-mules-reload / touch-spoolers-reload replace those processes (found by their `auto-procname` titles); "
        "checked without the scripts' race (they pgrep before the processes exist, and fail on uWSGI itself on a "
        "busy machine)",
        "test_touch_reload_replaces_mules_and_spoolers"),
    Row("tests/mule_file.py", "uwsgi.mule_file() in a mule-only instance", "test_mule_only_and_spooler_only_instances",
        uwsgi="fails: 2.0.31 has no uwsgi.mule_file() (the mule dies in a loop)", uisge=PASSES),
    Row("tests/spooler_dir.py", "uwsgi.spooler_dir() in a spooler-only instance",
        "test_mule_only_and_spooler_only_instances",
        uwsgi="fails: 2.0.31's uwsgi.spool() refuses its str values", uisge=PASSES),
    Row("t/cachebitmap.ini t/cachebitmap.py", "cache2 with blocks, bitmap and purge_lru (unittest under `pyrun`)",
        "test_cachebitmap_ini_gives_uwsgis_result",
        uwsgi="14 of 15 (test_big_random compares str with bytes)", uisge="14 of 15, the same one failing"),
    Row("t/sharedarea/*", "sharedarea read/write/inc/dec at 8..64 bits; a 4.3 GB area (unittests under `pyrun`)",
        "test_sharedarea_inis"),
    Row("tests/else_test.ini", "config logic: 2.0.31 has no `else`, so `exit = 17` is reached",
        "test_else_test_ini_exits_17"),
    Row("t/cron.ini", "`cron =` lines with -1 fields", "test_demo_does_what_uwsgi_does"),
    Row("t/python/timers.py", "@mstimer(500)", "test_demo_does_what_uwsgi_does",
        uwsgi="fails: 2.0.31's uwsgidecorators has no mstimer", uisge=PASSES),
    Row("t/python/wsgi_chunked.py", "a chunked request body read in pieces (wsgi.input_terminated)",
        "test_same_answers_as_uwsgi",
        uwsgi="fails: the body is not decoded for the app on http-socket (an empty 200)",
        uisge="passes: decoded, the app reads it (docs/deviations.md)"),
    Row("t/core/readline/*", "werkzeug reading wsgi.input line by line (its client.py's POST)",
        "test_same_answers_as_uwsgi"),
    Row("tests/testfilewrapper.py", "wsgi.file_wrapper through Flask's send_file, twice, on a non-file; streaming",
        "test_same_answers_as_uwsgi"),
    Row("tests/werkzeug_app.py", "werkzeug's test app; uwsgi.opt and uwsgi.magic_table", "test_same_answers_as_uwsgi"),
    Row("examples/welcome3.py", "uwsgi.sendfile(), X-Sendfile, uwsgi.opt, uwsgi.version", "test_same_answers_as_uwsgi",
        uwsgi="`/config` raises in its generator (it decodes str keys): a 200 with an empty body",
        uisge="the same answers, except `/config`: a 500 (docs/deviations.md)"),
    Row("tests/threads_atexit.py", "atexit handlers run when max-requests recycles a threaded worker (PR 2615)",
        "test_threads_atexit_py_runs_atexit_when_max_requests_recycles"),
    Row("tests/threads_heavy.py", "busy threaded workers recycled by max-requests leave without NO MERCY (PR 2615)",
        "test_threads_heavy_py_recycles_busy_threaded_workers_without_mercy_kills"),
    Row("tests/runningthread.py", "a thread raising signal 17 once uwsgi.ready()", "test_demo_does_what_uwsgi_does",
        uwsgi="passes (`error managing signal 17`: nobody registered it)",
        uisge="passes (`signal 17 reached worker 1 ..., which has no handler for it`)"),
    Row("tests/logger.py", "uwsgi.log(), log_this_request() with disable-logging", "test_demo_does_what_uwsgi_does",
        uwsgi="logs as asked; its str body is dropped (an empty 200)",
        uisge="logs as asked; its str body is refused (a 500: docs/deviations.md)"),
    Row("tests/badwrites.py", "sleeps, then yields str pieces", "test_demo_does_what_uwsgi_does",
        uwsgi="fails: each str piece dropped (an empty 200)",
        uisge="fails: a 500 (str is not a body, docs/deviations.md)"),
    Row("tests/rpc.py", "register_rpc then rpc(None, name) at import", "test_demo_does_what_uwsgi_does",
        uwsgi="fails: `ValueError: unable to call rpc function`", uisge="passes: `b'Hello World'`"),
    Row("tests/spoolme.py", "uwsgi.spool() with str values from a request", "test_demo_does_what_uwsgi_does",
        uwsgi="fails: `spooler callable dictionary must contains only bytes`", uisge="passes: spooled and run"),
    Row("tests/signals.py", "register_signal with a payload (1.x API)", "test_demo_does_what_uwsgi_does",
        uwsgi="fails: TypeError at import", uisge="fails: the same TypeError"),
    Row("tests/testsignals.py", "raw signals to a node named /tmp (1.x API)", "test_demo_does_what_uwsgi_does",
        uwsgi="fails: `unable to deliver signal 10 to node /tmp`",
        uisge="fails: signals to other instances are not offered (docs/deviations.md)"),
    Row("tests/sharedarea.py", "sharedarea_writelong(pos, value) (1.x API)", "test_demo_does_what_uwsgi_does",
        uwsgi="fails: TypeError at import", uisge="fails: the same TypeError"),
    Row("t/spooler/read.py t/spooler/spooldir/*", "spooler-external read by a @muleloop, fed by another",
        "test_demo_does_what_uwsgi_does",
        uwsgi="fails: uwsgi.spool() refuses str values; bytes + str in the reader",
        uisge="fails: the reader's bytes + str (its spooling works)"),
    Row("t/spooler/cheap.py", "spooler-cheap", "test_demo_does_what_uwsgi_does",
        uwsgi="fails: spooler-cheap is not an option of 2.0.31", uisge="fails: the same (not an option)"),
    Row("t/python/spooler_decorators/*",
        "@spool/@spoolraw/pass_arguments tasks signalling a `pyrun` unittest that waits with signal_wait (command "
        "mode: the script runs in the one worker beside the spooler)", "test_spooler_decorators_ini_pyrun_beside_a_spooler"),
    # ---------------------------------------------------------------- out of scope
    Row("t/perl/* t/core/*.pl t/core/apps/*.pl tests/*.pl tests/*.pm tests/t/static.pl tests/streamer.psgi",
        "Perl (PSGI) apps", out="another language"),
    Row("t/rack/* tests/*.ru tests/gh-rack.sh", "Ruby (Rack) apps", out="another language"),
    Row("t/lua/* tests/*.lua", "Lua apps", out="another language"),
    Row("t/php/*", "PHP", out="another language"),
    Row("t/java/* t/clojure/* t/ring/* t/ring/*/* t/ring/*/*/*/*/*", "JVM, Clojure, Ring", out="another language"),
    Row("t/go/*", "Go", out="another language"),
    Row("t/mono/*", "Mono (ASP.NET)", out="another language"),
    Row("t/cgi/*", "CGI", out="another language (the cgi plugin)"),
    Row("t/pypy/*", "the PyPy plugin's continulets", out="another plugin (PyPy, not CPython)"),
    Row("t/routing/* t/python/forcecl.py", "uWSGI's internal routing (`route-run`, auth, limiters)",
        out="routing: uisge has none; nginx does this in front (docs/deviations.md)"),
    Row("t/xslt/* t/webdav/*", "the xslt and webdav plugins", out="routing and plugins uisge does not have"),
    Row("tests/*_async.py tests/*_async_unix.py tests/*_green.py tests/*_stackless.py tests/sleepthreadasync.py "
        "tests/ugevent.py tests/testgevent.py tests/gevent_spool.py tests/mako_ugreen.py tests/websockets*.py",
        "async modes: gevent, greenlet, uGreen, stackless, asyncio loops, uWSGI's websocket API",
        out="async/green modes (issue 16 brings ASGI and websockets instead)"),
    Row("t/cachetest.py t/python/testmultipleenv.py tests/sendchunked.py tests/grunter.py tests/threads.py "
        "t/python/spooler_priority/*",
        "Python 2 code (string.letters, print statements, `except OSError, e`, str sockets, six)",
        out="Python 2 only: it fails on Python 3 before it reaches the server"),
    Row("tests/refcount.py", "sys.gettotalrefcount()", out="needs a debug build of CPython"),
    Row("tests/testapp.py tests/decoratortest.py tests/picazzo.py tests/queue.py tests/templates/*",
        "demos of 1.x-era apps (Django 1 in /opt/apps, uwsgicc, picasso, the queue framework)",
        out="needs code that is not in the sdist or on PyPI, or the removed queue framework"),
    Row("tests/myadmin.py", "uwsgi.send_message to an admin plugin", out="a 1.x API removed in 2.0"),
    Row("tests/pump.py tests/web3.py", "the pump and web3 interfaces", out="other app interfaces than WSGI"),
    Row("t/python/spooler_handler.py", "a spooler handler importing `constants`",
        out="broken in the sdist: the module it imports does not exist"),
    Row("tests/travis.sh tests/__init__.py tests/multiapp.txt tests/static/*",
        "CI scripts, notes, package markers, data", out="not a test"),
)


def row_for(path: str) -> Row | None:
    return next((row for row in ROWS if row.covers(path)), None)


def counts() -> dict[str, int]:
    run = [r for r in ROWS if r.case]
    return {
        "in scope": sum(1 for r in ROWS if not r.out),
        "run on both": len(run),
        "uwsgi passes": sum(1 for r in run if r.uwsgi.startswith("passes") or r.uwsgi[0].isdigit()),
        "uisge passes": sum(1 for r in run if r.uisge.startswith(("passes", "the same")) or r.uisge[0].isdigit()),
        "out of scope": sum(1 for r in ROWS if r.out),
    }


def gaps() -> list[str]:
    """Items uWSGI 2.0.31 passes and uisge does not (yet)."""
    return [f"`{row.pattern.split()[0]}`" for row in ROWS if not row.out and row.uwsgi.startswith("passes")
            and not row.uisge.startswith(("passes", "the same"))]


def render() -> str:
    c = counts()
    lines = [
        "# uWSGI's own tests, run on uisge",
        "",
        "<!-- made by `python -m tests.compat.catalogue > docs/compat.md`; tests/compat/test_catalogue.py keeps it "
        "true -->",
        "",
        "uWSGI 2.0.31's source distribution on PyPI carries its test material in `t/` and `tests/`. The suite "
        "(`tests/compat/`) downloads it, builds real uWSGI 2.0.31 from PyPI, and runs every item below that is about "
        "the Python plugin, the core or the config system on **both** servers, the way the file's header, script "
        "or uWSGI's CI runs it. Each case asserts what uWSGI does; where uisge differs on purpose it asserts uisge's "
        "documented behaviour (docs/deviations.md). Nothing of uWSGI's is copied into this repository.",
        "",
        f"- in scope: {c['in scope']} items; run on both servers at every test run: {c['run on both']}",
        f"- uWSGI 2.0.31 passes {c['uwsgi passes']} of them here; uisge passes {c['uisge passes']}. "
        + (f"Not yet passed by uisge though uWSGI passes them: {', '.join(gaps())}. " if gaps() else
           "Every item uWSGI passes, uisge passes. ")
        + "The items uWSGI fails here were written for its later API or for Python 2.",
        f"- out of scope: {c['out of scope']} groups (other languages, routing, async modes, Python 2 only, "
        "not a test)",
        "",
        "| files | what it checks | uWSGI 2.0.31 here | uisge | case |",
        "|---|---|---|---|---|",
    ]
    for row in ROWS:
        if row.out:
            continue
        files = ", ".join(f"`{p}`" for p in row.pattern.split())
        lines.append(f"| {files} | {row.what} | {row.uwsgi} | {row.uisge} | "
                     f"{'`' + row.case + '`' if row.case else '-'} |")
    lines += ["", "## Out of scope", "", "| files | what they are | why |", "|---|---|---|"]
    for row in ROWS:
        if row.out:
            files = ", ".join(f"`{p}`" for p in row.pattern.split())
            lines.append(f"| {files} | {row.what} | {row.out} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
