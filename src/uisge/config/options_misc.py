"""uWSGI options that do not belong to a topic above: mostly accepted-and-ignored or refused ones."""

from uisge.config.declare import ignored, refused, topic

opt = topic("misc")

OPTIONS = (
    opt("vhost", "flag", "Virtual hosting mode.", **refused("dynamic virtual hosting is not supported; use `mount`")),
    opt("route", "str", "Internal routing rule.", repeat=True, **refused(
        "internal routing is not supported; do routing in nginx or in the app")),
    opt("route-uri", "str", "Internal routing rule.", repeat=True, **refused("see `route`")),
    opt("route-host", "str", "Internal routing rule.", repeat=True, **refused("see `route`")),
    opt("subscribe-to", "str", "Subscribe to a Fastrouter.", aliases=("subscribe2",), repeat=True, **refused(
        "the subscription system is not supported")),
    opt("carbon", "str", "Send metrics to Carbon.", repeat=True, **refused("use the Prometheus endpoint instead")),
    opt("max-fd", "int", "Set the open files limit (soft and hard) at start, before binding and dropping privileges "
        "(raising it needs root).", metavar="N"),
    opt("reaper", "flag", "Reap zombies in workers.", short="r", **ignored("uisge workers reap their own children")),
    opt("optimize", "int", "Python optimisation level.", short="O", **refused(
        "uisge runs in the Python that started it and cannot change its optimisation level afterwards: start it "
        "with `python -O -m uisge ...` (-OO for 2) or set PYTHONOPTIMIZE=N in its environment")),
    opt("sharedarea", "str", "A shared memory area for uwsgi.sharedarea_*(): a number of 4 KiB pages, or "
        "`size=BYTES` / `pages=N`; the first is id 0.", short="A", repeat=True, metavar="PAGES"),
    opt("legion", "str", "Legion clustering.", repeat=True, **refused("clustering is not supported")),
    opt("pep3333-input", "flag", "PEP 3333 input.", **ignored("wsgi.input always follows PEP 3333 in uisge")),
    opt("wsgi-env-behaviour", "str", "Environ copy policy.", aliases=("wsgi-env-behavior",), **ignored(
        "uisge builds a fresh environ per request")),
    opt("cpu-affinity", "int", "Pin each worker to this many CPUs, as uWSGI maps them: worker 1 to the first N, "
        "worker 2 to the next N, wrapping around.", metavar="N"),
    opt("memory-limit", "megabytes", "Limit memory.", **refused(
        "it is not an option of uWSGI 2.0; use reload-on-rss (or limit-as) to recycle a worker that grows, or "
        "systemd's MemoryMax= for the whole instance")),
    opt("ksm", "int", "Kernel samepage merging.", optional_value=True, **refused(
        "Python cannot mark its heap mergeable (madvise MADV_MERGEABLE); workers already share what the master "
        "loaded, copy-on-write (gc.freeze)")),
    opt("test", "str", "Test a module import.", short="J", **refused("use `uisge check`")),
)
