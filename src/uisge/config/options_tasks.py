"""Options of background and scheduled work: cron, timers, mules, spooler, attached daemons, caches."""

from uisge.config.declare import planned, topic

opt = topic("tasks")

P = planned(8)

OPTIONS = (
    opt("cron", "str", "Run a shell command: `MIN HOUR DAY MONTH WEEKDAY command` (-1 any, -N every N).",
        repeat=True, implies_master=True, **P),
    opt("cron2", "str", "Key=value cron: `minute=-5,unique=1 command`.", repeat=True, implies_master=True, **P),
    opt("unique-cron", "str", "Like cron, skipped while the previous run is still going.", repeat=True,
        implies_master=True, **P),
    opt("cron-harakiri", "int", "Kill cron commands running longer than this many seconds.", **P),
    opt("timer", "str", "`SIGNAL SECONDS`: raise a uWSGI signal periodically.", repeat=True, implies_master=True, **P),
    opt("mule", "str", "Add a mule process, optionally running a file or `module:function`.", repeat=True,
        optional_value=True, implies_master=True, **P),
    opt("mules", "int", "Add this many idle mules.", implies_master=True, **P),
    opt("farm", "str", "`name:1,2`: group mules into a farm.", repeat=True, implies_master=True, **P),
    opt("spooler", "path", "Run a spooler on this directory.", short="Q", repeat=True, implies_master=True, **P),
    opt("spooler-processes", "int", "Processes per spooler directory.", default=1, **P),
    opt("spooler-frequency", "int", "Seconds between spooler scans.", default=30, **P),
    opt("spooler-max-tasks", "int", "Recycle the spooler after this many tasks.", **P),
    opt("spooler-harakiri", "int", "Kill spooler tasks running longer than this many seconds.", **P),
    opt("spooler-import", "str", "Import this module in the spooler.", repeat=True, **P),
    opt("spooler-quiet", "flag", "Do not log each task.", **P),
    opt("attach-daemon", "str", "Run and respawn a command beside the server.", repeat=True, implies_master=True, **P),
    opt("attach-daemon2", "str", "Key=value attached daemon.", repeat=True, implies_master=True, **P),
    opt("smart-attach-daemon", "str", "`PIDFILE COMMAND`: a daemon tracked by its pidfile.", repeat=True,
        implies_master=True, **P),
    opt("smart-attach-daemon2", "str", "Like smart-attach-daemon, uisge daemonizes it.", repeat=True,
        implies_master=True, **P),
    opt("locks", "int", "Number of user locks.", default=1, **P),
    opt("cache2", "str", "A cache: `name=NAME,items=N[,blocksize=B]`.", repeat=True, **P),
    opt("cache", "int", "The default cache with this many items.", **P),
    opt("import", "str", "Import a module in the master before forking (for decorators).",
        aliases=("python-import", "py-import", "pyimport"), repeat=True, **P),
    opt("shared-import", "str", "Import a module in the master and workers.", repeat=True, **P),
)
