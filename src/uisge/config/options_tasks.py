"""Options of background and scheduled work: cron, timers, mules, spooler, attached daemons, caches."""

from uisge.config.declare import ignored, topic

opt = topic("tasks")


OPTIONS = (
    opt("tasks-backend", "str", "A Redis shared by several instances (redis://HOST:PORT/DB, rediss://..., "
        "unix:///path/redis.sock): they form one group whose timers and crons (`@timer`, `@cron`, `@rbtimer`, "
        "`timer`, `cron`, `unique-cron`, `cron2`) run once per group, on the instance holding the scheduler "
        "lease (taken over within about 4 s when it dies). Needs `pip install 'uisge[redis]'`.",
        metavar="URL", implies_master=True),
    opt("tasks-backend-locks", "flag", "Make `uwsgi.lock()` / `unlock()` / `is_locked()` and uwsgidecorators' "
        "`@lock` hold across every instance of the tasks-backend group (a Redis key per lock; a holder that "
        "dies keeps it at most max(60 s, 2 x harakiri)). Off: they hold across this instance's processes."),
    opt("cron", "str", "Run a shell command: `MIN HOUR DAY MONTH WEEKDAY command` (-1 any, -N every N).",
        repeat=True, implies_master=True),
    opt("cron2", "str", "Key=value cron: `minute=-5,unique=1 command`.", repeat=True, implies_master=True),
    opt("unique-cron", "str", "Like cron, skipped while the previous run is still going.", repeat=True,
        implies_master=True),
    opt("cron-harakiri", "int", "Kill cron commands running longer than this many seconds."),
    opt("timer", "str", "`SIGNAL SECONDS`: raise a uWSGI signal periodically.", repeat=True, implies_master=True),
    opt("mule", "str", "Add a mule process, optionally running a file or `module:function`.", repeat=True,
        optional_value=True, implies_master=True),
    opt("mules", "int", "Add this many idle mules.", implies_master=True),
    opt("farm", "str", "`name:1,2`: group mules into a farm.", repeat=True, implies_master=True),
    opt("spooler", "path", "Run a spooler on this directory.", short="Q", repeat=True, implies_master=True),
    opt("spooler-external", "path", "A spooler directory that apps spool into but another instance's spooler "
        "runs (no spooler process here).", repeat=True, implies_master=True),
    opt("spooler-ordered", "flag", "Run spooler tasks in order.", **ignored(
        "uisge always runs them in order: priority directories first, then the oldest task")),
    opt("spooler-processes", "int", "Processes per spooler directory.", default=1),
    opt("spooler-frequency", "int", "Seconds between spooler scans.", default=30),
    opt("spooler-max-tasks", "int", "Recycle the spooler after this many tasks."),
    opt("spooler-harakiri", "int", "Kill spooler tasks running longer than this many seconds."),
    opt("spooler-import", "str", "Import this module in the spooler.", repeat=True),
    opt("spooler-quiet", "flag", "Do not log each task."),
    opt("attach-daemon", "str", "Run and respawn a command beside the server.", repeat=True, implies_master=True),
    opt("attach-daemon2", "str", "Key=value attached daemon.", repeat=True, implies_master=True),
    opt("smart-attach-daemon", "str", "`PIDFILE COMMAND`: a daemon tracked by its pidfile.", repeat=True,
        implies_master=True),
    opt("smart-attach-daemon2", "str", "Like smart-attach-daemon, uisge daemonizes it.", repeat=True,
        implies_master=True),
    opt("locks", "int", "Number of user locks.", default=1),
    opt("cache2", "str", "A cache: `name=NAME,items=N[,blocksize=B][,keysize=K][,blocks=N,bitmap=1]"
        "[,purge_lru=1]` (N-1 keys, as uWSGI: item 0 is never used).", repeat=True),
    opt("cache", "int", "The default cache with this many items."),
    opt("import", "str", "Import a module in the master before forking (for decorators).",
        aliases=("python-import", "py-import", "pyimport"), repeat=True),
    opt("shared-import", "str", "Import a module in the master and workers.", aliases=("shared-py-import",
        "shared-python-import", "shared-pyimport"), repeat=True),
    opt("touch-mules-reload", "path", "Reload the mules (each finishes its message) when this file is touched.",
        repeat=True, implies_master=True),
    opt("touch-spoolers-reload", "path", "Reload the spoolers (each finishes its task) when this file is touched.",
        repeat=True, implies_master=True),
)
