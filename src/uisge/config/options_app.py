"""Options that find, import and mount the WSGI application."""

from uisge.config.declare import ignored, refused, topic

opt = topic("app")

OPTIONS = (
    opt("wsgi-file", "path", "Load the WSGI app from a Python file (relative to `chdir`).", aliases=("file",),
        metavar="FILE"),
    opt("module", "str", "Load the WSGI app from a module: `pkg.wsgi`, `pkg.wsgi:application`, `pkg.wsgi:app`, "
        "`pkg.app:create_app()`.", aliases=("wsgi",), short="w", metavar="MODULE[:CALLABLE]"),
    opt("callable", "str", "Name of the WSGI callable in the file or module.", default="application"),
    opt("interface", "choice", "What the app callable speaks: auto (an `async def` callable, or an object whose "
        "`__call__` is one, is ASGI; anything else WSGI), wsgi, asgi (for an ASGI app the check cannot see, "
        "such as a plain function returning a coroutine).", extra={"choices": ("auto", "wsgi", "asgi")},
        default="auto"),
    opt("mount", "keyval", "Mount an app at a path prefix: `/prefix=file.py` or `/prefix=pkg.mod:app`.",
        repeat=True, metavar="MOUNTPOINT=APP"),
    opt("chdir", "path", "Change to this directory before loading the app.", metavar="DIR"),
    opt("chdir2", "path", "Change to this directory after loading the app.", metavar="DIR"),
    opt("pythonpath", "str", "Add a directory (glob allowed) to sys.path.", aliases=("python-path", "pp"),
        repeat=True, metavar="DIR"),
    opt("env", "keyval", "Set an environment variable before the app loads: `NAME=VALUE`.", repeat=True,
        metavar="NAME=VALUE"),
    opt("unenv", "str", "Remove an environment variable.", repeat=True, metavar="NAME"),
    opt("home", "path", "The virtualenv whose packages the app uses; if it holds another Python, uisge "
        "re-executes itself under it.", aliases=("virtualenv", "venv", "pyhome"), short="H", metavar="DIR"),
    opt("need-app", "flag", "Exit (code 22) when the app cannot be loaded.", default=True,
        deviation="On by default: an app that fails to import stops start-up with its traceback and exit "
        "code 22, instead of running in 'full dynamic mode' answering 500 to everything. An instance with no app "
        "configured still runs when it has mules, a spooler, static-map, attach-daemon or cron work."),
    opt("lazy-apps", "flag", "Load the app in each worker after fork instead of once in the master."),
    opt("lazy", "flag", "Like lazy-apps, and SIGHUP only recycles workers."),
    opt("single-interpreter", "flag", "Use one Python interpreter.", short="i",
        **ignored("uisge always runs one interpreter per process")),
    opt("enable-threads", "flag", "Enable Python threads.", short="T",
        **ignored("threads are always enabled in uisge (as in uWSGI since 2.0.27)")),
    opt("plugin", "str", "Load a uWSGI plugin.", aliases=("plugins", "plugins-dir", "plugin-dir", "need-plugin",
        "need-plugins"), repeat=True, **ignored("uisge has Python built in; there are no plugins to load")),
    opt("catch-exceptions", "flag", "Show app tracebacks in the HTTP response.",
        **refused("it leaks source code to clients; read the traceback in the log")),
    opt("py-tracebacker", "str", "Each worker serves its Python threads' stacks on the unix socket PATH<worker id> "
        "(read it with `uisge --connect-and-read PATH1`).", metavar="PATH"),
    opt("wsgi-disable-file-wrapper", "flag", "Do not offer wsgi.file_wrapper."),
    opt("paste", "str", "Load a Paste Deploy app.", **refused("Paste Deploy is not supported; point `module` at a "
        "module that builds the app")),
    opt("eval", "str", "Evaluate Python code as the app.", **refused("write the code into a file and use `wsgi-file`")),
    opt("pyargv", "str", "The app's sys.argv after `uwsgi` (space-separated), as uWSGI sets it: by default "
        "sys.argv is ['uwsgi'], not the server's command line.", metavar="ARGS"),
    opt("callable-factory", "flag", "Call the callable once to build the app (same as writing `name()`)."),
)
