"""Options that keep workers healthy: harakiri, recycling, memory limits, reload triggers."""

from uisge.config.declare import topic

opt = topic("health")

OPTIONS = (
    opt("harakiri", "int", "Kill and respawn a worker whose request runs longer than this many seconds "
        "(0: off).", short="t", default=0,
        deviation="Two layers: the worker's own watchdog answers 504 at the deadline and logs the stuck thread's "
        "stack; when app code holds the GIL so that no Python runs (a C loop), the master sees the deadline "
        "pass on the scoreboard, logs every thread's stack (faulthandler, on SIGUSR2) and kills the worker about "
        "1 s later (plus `harakiri-graceful-timeout`); that client's connection is closed without an answer. "
        "Without `master` only the watchdog exists."),
    opt("harakiri-verbose", "flag", "Log more about harakiri'd requests (uisge always logs the request and the "
        "stuck thread's Python stack)."),
    opt("harakiri-graceful-timeout", "int", "Seconds between the graceful signal and the kill on harakiri.",
        default=0),
    opt("harakiri-graceful-signal", "signal", "Signal sent first on harakiri.", default="SIGTERM"),
    opt("max-requests", "int", "Recycle a worker after this many requests (0: never).", short="R", default=0),
    opt("max-requests-delta", "int", "Add up to this many requests of random jitter to max-requests.", default=0,
        deviation="A random 0..N per worker and per respawn (uWSGI adds (worker id - 1) x N), so workers "
        "respawned together still drift apart."),
    opt("max-worker-lifetime", "int", "Recycle a worker after this many seconds.", default=0),
    opt("max-worker-lifetime-delta", "int", "Jitter added to max-worker-lifetime.", default=0),
    opt("min-worker-lifetime", "int", "Seconds a worker lives at least before max-requests recycles it.",
        default=10),
    opt("reload-on-as", "megabytes", "Recycle a worker whose address space exceeds this many MB."),
    opt("reload-on-rss", "megabytes", "Recycle a worker whose resident memory exceeds this many MB."),
    opt("evil-reload-on-as", "megabytes", "Kill a worker whose address space exceeds this many MB.",
        implies_master=True),
    opt("evil-reload-on-rss", "megabytes", "Kill a worker whose resident memory exceeds this many MB.",
        implies_master=True),
    opt("memory-report", "flag", "Add memory use to each request log line.", short="m"),
    opt("touch-reload", "path", "Gracefully reload when this file is touched.", repeat=True, implies_master=True),
    opt("touch-chain-reload", "path", "Chain-reload workers one by one when this file is touched.", repeat=True,
        implies_master=True),
    opt("touch-workers-reload", "path", "Reload only the workers when this file is touched.", repeat=True,
        implies_master=True),
    opt("py-autoreload", "int", "Reload when an imported module's file changes, checking every N seconds.",
        aliases=("py-auto-reload", "python-autoreload", "python-auto-reload"), default=0, implies_master=True),
    opt("py-auto-reload-ignore", "str", "Module names py-autoreload does not watch.", repeat=True),
    opt("limit-as", "megabytes", "Limit each process's address space (RLIMIT_AS)."),
)
