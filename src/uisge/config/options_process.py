"""Options about the master, workers, privileges, signals and reloads."""

from uisge.config.declare import ignored, refused, topic

opt = topic("process")

OPTIONS = (
    opt("master", "flag", "Run a master process that supervises and respawns the workers.", short="M"),
    opt("processes", "int", "Number of worker processes.", aliases=("workers",), short="p", default=1),
    opt("threads", "int", "Application threads per worker.", default=1),
    opt("daemonize", "path", "Detach into the background and log to this file.", short="d", metavar="LOGFILE"),
    opt("daemonize2", "path", "Detach after the app is loaded and log to this file.", metavar="LOGFILE"),
    opt("pidfile", "path", "Write the master's pid to this file.", metavar="FILE"),
    opt("pidfile2", "path", "Write the pid file after dropping privileges.", metavar="FILE"),
    opt("vacuum", "flag", "Remove the pidfile and unix sockets on exit."),
    opt("uid", "str", "Drop privileges to this user (name or number) after binding sockets.", metavar="USER"),
    opt("gid", "str", "Drop privileges to this group (name or number) after binding sockets.", metavar="GROUP"),
    opt("no-initgroups", "flag", "Do not set supplementary groups when dropping privileges."),
    opt("umask", "octal", "File mode creation mask.", metavar="MASK"),
    opt("die-on-term", "flag", "Stop on SIGTERM (accepted for compatibility: uisge always does).",
        deviation="SIGTERM stops gracefully by default (uWSGI 2.0: a brutal reload unless `die-on-term`): "
        "workers stop accepting, serve what they have and what waits in the listen backlog, then exit 0, "
        "as systemd, Docker and Kubernetes expect. `sigterm-reload` brings back 2.0's behaviour."),
    opt("reload-mercy", "int", "Seconds an attached daemon gets to stop (on stop and reload) before SIGKILL; the "
        "workers' time is worker-reload-mercy.", default=3),
    opt("worker-reload-mercy", "int", "Seconds a stopping or reloading worker gets to finish its requests "
        "before it is killed.", default=60),
    opt("mule-reload-mercy", "int", "Seconds a stopping or reloading mule (or spooler) gets to finish.", default=30),
    opt("master-fifo", "path", "A FIFO the master reads single-letter commands from.", repeat=True,
        implies_master=True),
    opt("no-orphans", "flag", "Workers die when the master dies.", **ignored(
        "uisge workers always leave when the master is gone: they see its control socket close")),
    opt("procname-prefix", "str", "Prefix of process titles."),
    opt("procname-prefix-spaced", "str", "Prefix of process titles, followed by a space."),
    opt("procname-append", "str", "Suffix of process titles."),
    opt("procname", "str", "Title of the worker processes."),
    opt("procname-master", "str", "Title of the master process."),
    opt("auto-procname", "flag", "Title processes as uWSGI does (`uWSGI worker 1`, `uWSGI mule 1`, `uWSGI "
        "spooler`) instead of uisge's own `uisge worker 1` (either needs setproctitle)."),
    opt("forkbomb-delay", "int", "Seconds to wait when workers respawn too fast.", default=2),
    opt("cheaper", "int", "Adaptive workers: the fewest to keep running (lower than processes, the most); "
        "idle workers above it are retired, busy times bring them back (cheaper-algo).", default=0,
        implies_master=True),
    opt("cheaper-initial", "int", "Workers started at first with cheaper (default: cheaper).", default=0,
        implies_master=True),
    opt("cheaper-step", "int", "Workers added at once when the algorithm asks for more.", default=1,
        implies_master=True),
    opt("cheaper-overload", "int", "The algorithm's threshold: cycles (seconds) of overload for spare and "
        "busyness, queued connections for backlog.", default=3, implies_master=True),
    opt("cheaper-algo", "choice", "How cheaper decides: spare (all busy -> more; idle -> fewer), backlog "
        "(listen queue), busyness (share of time in requests), manual (master FIFO + and - only).",
        extra={"choices": ("spare", "backlog", "busyness", "manual")}, default="spare", implies_master=True),
    opt("cheaper-rss-limit-soft", "int", "Add no worker while the workers' total RSS is at least this many "
        "bytes.", default=0, implies_master=True),
    opt("cheaper-rss-limit-hard", "int", "Retire a worker while the workers' total RSS is at least this many "
        "bytes.", default=0, implies_master=True),
    opt("cheaper-busyness-max", "int", "busyness: above this percent workers are loaded (more workers).",
        default=50),
    opt("cheaper-busyness-min", "int", "busyness: below this percent workers are idle (fewer workers).",
        default=25),
    opt("cheaper-busyness-multiplier", "int", "busyness: a worker is retired after cheaper-overload x this many "
        "idle seconds.", default=10),
    opt("cheaper-busyness-penalty", "int", "busyness: added to the multiplier when a retired worker is needed "
        "again too soon.", default=2),
    opt("cheaper-busyness-verbose", "flag", "busyness: log each cycle's figures."),
    opt("cheaper-busyness-backlog-alert", "int", "busyness: start an emergency worker when this many "
        "connections wait in the listen queue.", default=33),
    opt("cheaper-busyness-backlog-multiplier", "int", "busyness: the multiplier while emergency workers run.",
        default=3),
    opt("cheaper-busyness-backlog-step", "int", "busyness: emergency workers started at once.", default=1),
    opt("cheaper-busyness-backlog-nonzero", "int", "busyness: start an emergency worker when the listen queue "
        "has not been empty for this many seconds.", default=60),
    opt("emperor", "str", "Run the Emperor.", repeat=True, **refused(
        "the Emperor is not supported; run one uisge per app under systemd (see docs/deployment.md)")),
    opt("vassal-sos", "int", "Ask the Emperor for reinforcements.", **refused("the Emperor is not supported")),
    opt("chroot", "path", "chroot() before serving.", **refused("use systemd's RootDirectory= or a container")),
    opt("master-as-root", "flag", "Keep the master running as root.", **ignored(
        "uisge binds as root, then the master and workers drop privileges together")),
    opt("drop-after-init", "flag", "Drop privileges after init.", **ignored("uisge always drops after binding")),
    opt("drop-after-apps", "flag", "Drop privileges after loading apps.", **ignored("uisge always drops after binding")),
    opt("sigterm-reload", "flag", "Make SIGTERM a brutal reload as in uWSGI 2.0."),
    opt("exit-on-reload", "flag", "Exit (code 0, after a graceful stop) instead of reloading: for a supervisor "
        "that restarts the instance itself, and for tests."),
    opt("py-call-osafterfork", "flag", "Run Python's after-fork hooks in the workers.", **ignored(
        "uisge forks with Python's os.fork(), which always runs them (os.register_at_fork handlers included)")),
)
