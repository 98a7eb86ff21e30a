"""Options of the stats server and monitoring endpoints."""

from uisge.config.declare import planned, topic

opt = topic("stats")

OPTIONS = (
    opt("stats", "address", "Serve the stats JSON (for uwsgitop) on `host:port` or a unix socket path.",
        aliases=("stats-server",), implies_master=True, metavar="ADDRESS", **planned(6)),
    opt("stats-http", "flag", "Answer HTTP requests on the stats address.", **planned(6)),
    opt("stats-minified", "flag", "One-line stats JSON.", aliases=("stats-min",), **planned(6)),
    opt("stats-no-cores", "flag", "Leave per-thread `cores` out of the stats.", **planned(6)),
    opt("metrics", "address", "Serve Prometheus metrics on this address.", **planned(6)),
    opt("enable-metrics", "flag", "Enable the metrics subsystem.", **planned(6)),
)
