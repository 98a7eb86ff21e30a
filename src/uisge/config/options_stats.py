"""Options of the stats server and monitoring endpoints."""

from uisge.config.declare import ignored, topic

opt = topic("stats")

OPTIONS = (
    opt("stats", "address", "Serve the stats JSON (for uwsgitop) on `host:port` or a unix socket path.",
        aliases=("stats-server",), implies_master=True, metavar="ADDRESS"),
    opt("stats-http", "flag", "Answer HTTP requests on the stats address."),
    opt("stats-minified", "flag", "One-line stats JSON.", aliases=("stats-min",)),
    opt("stats-no-cores", "flag", "Leave per-thread `cores` out of the stats."),
    opt("metrics", "address", "Serve Prometheus metrics (and /healthz, /readyz) on this address.",
        implies_master=True),
    opt("enable-metrics", "flag", "Enable the metrics subsystem.", **ignored(
        "uisge's metrics are always on when `stats` or `metrics` is set: the worker scoreboard feeds both")),
)
