"""Deliberate differences from uWSGI 2.0 that are not tied to one option's default.

Option defaults that differ carry their own `deviation` text in the registry; `report.py` merges both
into docs/deviations.md. Data only.
"""

ROWS: tuple[tuple[str, str, str], ...] = (
    ("ini inline comments",
     "`uid=www-data # comment` keeps the whole text as the value (so the user lookup fails; "
     "`master = false # x` turns the master on)",
     "a `#` that follows a space or tab starts a comment, so the value is what the author meant"),
    ("unknown ini keys",
     "silently kept as placeholders (`work = 20` does nothing, says nothing)",
     "still kept as variables, but a key never used as `%(name)` gets a warning with file:line and a "
     "did-you-mean; `strict` makes it an error"),
    ("command-line abbreviations",
     "unique prefixes accepted silently (`--proces 4`)",
     "still accepted, with a warning naming the full option; `strict` makes it an error"),
    ("command-line typos",
     "`unrecognized option '--foo'` / `getopt_long() error`",
     "the error names the argument position and suggests the closest options; typographic dashes "
     "(`–http` copied from a blog) get their own explanation"),
    ("`--master=false` on the command line",
     "error: the option doesn't allow an argument",
     "read as a boolean, as in an ini file"),
    ("missing ini section",
     "a warning, then start without that configuration",
     "an error listing the sections the file has"),
    ("a number as a socket address (`http-socket = 60`)",
     "binds a unix socket named `60`",
     "an error suggesting `:60`, or `http-timeout`/`socket-timeout` if a timeout was meant"),
    ("unknown magic variable (`%z`)",
     "replaced by nothing, silently",
     "replaced by nothing, with a warning (`%%` is a literal percent sign)"),
    ("`$(VAR)` with VAR unset, `%(name)` undefined",
     "left as written, silently",
     "left as written, with a warning naming the variable"),
    ("HTTP request parsing",
     "lenient (`--http-socket`: obs-fold, headers without `:` skipped, CL+TE accepted, duplicate CL merged)",
     "strict RFC 9112 (llhttp): every framing ambiguity is a 400 (501 for unknown transfer codings) with "
     "`Connection: close`, pipelined bytes after it are never parsed; even whitespace around `;` in chunk "
     "extensions is refused"),
    ("an app exception before the response head",
     "an empty reply (curl: `Empty reply from server`)",
     "a 500 response with `Connection: close`; the traceback goes to the log"),
    ("`HTTP_CONTENT_TYPE` / `HTTP_CONTENT_LENGTH` from nginx",
     "passed to the app next to `CONTENT_TYPE`/`CONTENT_LENGTH` (nginx sends both; `wsgiref.validate` rejects "
     "the environ)",
     "dropped, as PEP 3333 wants; their value fills `CONTENT_TYPE`/`CONTENT_LENGTH` only if nginx did not "
     "send those"),
    ("graceful reload (SIGHUP, `--reload`, FIFO `r`)",
     "waits until every worker has finished, then re-execs the master: new requests wait in the listen "
     "backlog meanwhile, and a syntax error in the new code takes the instance down",
     "first checks in a separate process that the new config and code load (if not, the reload is refused "
     "with the traceback and the old workers go on), then re-execs the master with the workers still "
     "serving; each old worker leaves once its replacement accepts"),
    ("`daemonize`",
     "the shell returns at once, even if the server then fails to start",
     "the shell returns once the workers accept, or prints why the start failed with the end of the log; "
     "a missing log directory is created"),
    ("a worker dying at boot again and again",
     "respawned at once each time (`worker respawning too fast` after a burst)",
     "respawned with a growing delay (up to 30 s) and a log line calling it a crash loop"),
    ("harakiri",
     "the master SIGKILLs the worker; the client's connection is cut (nginx: 502) and the log names the "
     "request but not where it was stuck",
     "the worker's watchdog logs the request and the stuck thread's Python stack, answers 504 if no head "
     "was sent, then the worker is killed and respawned"),
    ("recycling (`max-requests`, `reload-on-rss`, ...)",
     "the worker exits, then the master respawns it: one worker fewer meanwhile, and workers with the same "
     "limits tend to recycle together",
     "the replacement is forked and accepting before the old worker leaves, one recycle at a time; "
     "`max-requests-delta` staggers the limits per worker id"),
    ("`py-autoreload` / `touch-reload` with broken new code",
     "workers reload into the broken code and die in a loop",
     "the reload is checked first and refused with the traceback; the running workers go on"),
    ("`static-map = /static=DIR` and `/static2/...`",
     "a plain string prefix: `/static` also maps `/static2/x` and `/staticfoo`; the docroot check is a raw "
     "prefix test, so a sibling directory `static2` is served",
     "a mount matches itself and what is below it only; the real path must be inside the mapped directory "
     "(or a `static-safe` one)"),
    ("static file responses",
     "no ETag, Date, Accept-Ranges or Cache-Control; no Content-Type for unknown extensions; 304 only for "
     "RFC 1123 dates",
     "ETag/If-None-Match, Last-Modified/If-Modified-Since (any HTTP date), Accept-Ranges, Cache-Control next "
     "to Expires, UTF-8 charset on text types, `.br` preferred over `.gz`"),
    ("timers and crons registered by every worker (`lazy-apps` + `@timer`/`@cron`)",
     "each worker adds its own timer: the job runs once per worker per interval, and timers pile up across "
     "respawns (64-slot limit)",
     "the master keeps one timer per (signal, interval) and one cron per (signal, rule): the job runs once per "
     "interval in one process of its target, as it does without `lazy-apps`"),
    ("cron across a reload",
     "a cron entry can run twice in the minute of a reload (the new master does not know the old one ran it)",
     "the minute each cron entry last ran is carried through the master's re-exec: at most one run a minute"),
    ("spooler task files",
     "written in place: a crash while writing leaves a truncated task that the spooler then runs",
     "written to a hidden temporary name, fsync()ed and renamed, so `spool()` returns only with the task "
     "whole on disk; a spooler takes a task under flock(), so an old and a new spooler never run it twice"),
    ("spooler on stop and reload",
     "SIGKILLed: the running task is cut and runs again later",
     "asked to stop: it finishes the running task (up to `mule-reload-mercy`), then leaves"),
    ("`smart-attach-daemon` on stop",
     "left running when the instance stops (pidfile-governed daemons outlive the master)",
     "left running across reloads, but stopped with the instance (what systemd would do to the cgroup anyway)"),
    ("an app that returns or yields `str` (not bytes)",
     "each str is dropped with `[ERROR] Unhandled object from iterator` in the log; the client gets a 200 with an "
     "empty (or partial) body",
     "a 500 (or, after the head went out, a cut connection) and a log line naming the value: PEP 3333 bodies are "
     "bytes, and a silent empty 200 hides the bug (uWSGI's own tests/mulefunc.py, sigwait.py and slow.py do it)"),
    ("an app error after `start_response()` but before the first body byte",
     "the head the app set goes out (a 200 with an empty body: examples/welcome3.py's `/config` on Python 3)",
     "a 500: the head waits for the first body byte (PEP 3333), so the error can still be told to the client"),
    ("a chunked request body on `http-socket`",
     "not decoded for a WSGI app: no `wsgi.input_terminated`, so t/python/wsgi_chunked.py answers an empty 200",
     "decoded as it arrives, with `wsgi.input_terminated = True` (the WSGI extension that exists for this)"),
    ("an app that yields `bytearray`, `memoryview` or `array` items",
     "2.0.31 drops each with `[ERROR] Unhandled object from iterator` (t/python/testba.py answers `ciao` "
     "instead of `6789abcdefciao`)",
     "sent like bytes, as uWSGI's later releases do (testba.py was written for them): they are buffers of "
     "bytes, and dropping them silently loses the body"),
    ("`uwsgi.spool()` / `uwsgi.send_to_spooler()` with str keys or values",
     "2.0.31 raises `ValueError: spooler callable dictionary must contains only bytes` (uwsgidecorators' "
     "`@spool` encodes for you; a direct call does not)",
     "str keys and values are taken and encoded as UTF-8, as `@spool` would (uWSGI's own tests/spooler_dir.py "
     "calls it so)"),
    ("`uwsgi.spool()` with `tasks-backend` (several instances, one queue: uisge's)",
     "no such option: a task is a file in this instance's spooler directory, spool() returns its path, and "
     "@spool needs a local `spooler`",
     "the task goes to the group's queue in Redis, spool() returns `redis:<id>`, an instance without a spooler "
     "may queue, and a task runs at least once (again elsewhere if its spooler dies: docs/deployment.md)"),
    ("the `uwsgi` module's functions uisge does not offer",
     "websockets for WSGI apps (`websocket_handshake()` and friends), RPC to other nodes, queue, metrics, "
     "async/green, offload, remote caches, `cache_inc` and friends",
     "present, but raise NotImplementedError naming the function (so `hasattr()` feature checks still pass); "
     "websockets are served to ASGI apps instead (README, docs/deployment.md); "
     "local RPC (`register_rpc`, `rpc(None, ...)`, `call`, `rpc_list`) and shared areas (`sharedarea_*`) are "
     "offered"),
    ("a static file changed on disk",
     "stat()ed on every request",
     "stat()ed at most once a millisecond per file (a stat costs about a tenth of a request): a change is "
     "served within 1 ms; the answer always matches one whole version of the file"),
    ("request bodies",
     "read from the socket while the app reads `wsgi.input` (a slow upload holds the worker, and harakiri counts "
     "it); with `post-buffering` read whole first, in RAM up to the limit",
     "read by the event loop before the app runs, as `post-buffering` does: up to `post-buffering` bytes (64 KiB "
     "when unset) in RAM, the rest into an unlinked temporary file as it arrives, so a 1 GiB upload costs a few "
     "KiB of RAM and a slow upload costs no worker"),
    ("a client that stops reading its response",
     "the worker blocks in write() until `socket-timeout`: every other request of that worker waits",
     "the response waits in the connection's output buffer (the app's iterable is pulled only as it drains) "
     "while the worker serves everybody else; after `socket-timeout` without progress the client is cut. An "
     "app that uses the legacy `write()` callable still waits for the client, as in uWSGI"),
    ("repeated slashes in the request path",
     "the HTTP router collapses them (`///a` reaches the app as `/a`)",
     "kept as sent (`///a`, `/a//b/`), as gunicorn does and routers expect; `.`/`..` segments are still "
     "resolved after percent-decoding, never above the root"),
    ("a chunk header (size and extensions) over 4 KiB",
     "accepted",
     "a 400: nobody sends such extensions except to make a server buffer them"),
    ("XML configs",
     "supported when built with libxml2",
     "refused with a message; convert to ini"),
    ("`max-fd` above the hard limit without root",
     "`setrlimit()` fails, the error is logged and the instance starts with the old limit",
     "refused at start, naming the hard limit and how to raise it (run as root, LimitNOFILE=)"),
    ("`logger` and `req-logger`",
     "any logger plugin built in (syslog, socket, rsyslog, redis, ...), several at once, named for log-route",
     "`file:PATH` (or `file:logfile=PATH,maxsize=N`) and `stdio`, one of each; anything else is refused at "
     "start with what to use instead. `req-logger = file:PATH` is reopened on a reload, not by the master "
     "FIFO's `l`"),
)
