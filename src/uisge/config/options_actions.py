"""One-shot commands given on the command line: control a running instance, read stats, print info."""

from uisge.config.declare import topic

opt = topic("actions")

OPTIONS = (
    opt("stop", "path", "Stop the instance whose master pid is in this pidfile (SIGINT).", action=True,
        metavar="PIDFILE"),
    opt("reload", "path", "Gracefully reload the instance whose master pid is in this pidfile (SIGHUP).",
        action=True, metavar="PIDFILE"),
    opt("pause", "path", "Pause/resume the instance in this pidfile (SIGTSTP): its workers stop or go back to "
        "accepting connections.", aliases=("suspend", "resume"), action=True, metavar="PIDFILE",
        deviation="A paused worker stops accepting new connections (they wait in the listen backlog) but finishes "
        "the requests it has and serves its open keep-alive connections; uWSGI suspends the worker outright."),
    opt("connect-and-read", "address", "Print what a stats socket sends, then exit.", action=True,
        metavar="ADDRESS"),
    opt("pyrun", "path", "Run a Python script as __main__ (with `import uwsgi` available, as in uWSGI), then exit "
        "with its status. With `master` and a spooler or mules, uWSGI's command mode: the script runs in the one "
        "worker while they run beside it, and the instance ends with it.", action=True, metavar="FILE"),
    opt("check", "flag", "Load the configuration, print every effective option with its origin and the "
        "warnings, and exit (non-zero on errors).", aliases=("check-config",), action=True),
    opt("show-config", "flag", "Print the configuration as ini, then continue.", ),
    opt("version", "flag", "Print the version and exit.", action=True),
    opt("help", "flag", "Print the option reference and exit.", short="h", aliases=("usage",), action=True),
)
