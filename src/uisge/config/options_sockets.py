"""Options about listening sockets and the uwsgi protocol."""

from uisge.config.declare import ignored, refused, topic

opt = topic("sockets")

OPTIONS = (
    opt("socket", "address", "Listen with the uwsgi protocol (for nginx `uwsgi_pass`) on `host:port`, `:port`, "
        "`[::]:port` or a unix socket path (relative to `chdir`).", aliases=("uwsgi-socket",), short="s",
        repeat=True, metavar="ADDRESS"),
    opt("http-socket", "address", "Listen with HTTP/1.1 spoken by the workers (keep-alive on).",
        aliases=("http11-socket",), repeat=True, metavar="ADDRESS",
        deviation="uWSGI's `http-socket` closes the connection after every response; uisge keeps HTTP/1.1 "
        "connections alive (as uWSGI's `http11-socket` does), so load balancers see no close races."),
    opt("https-socket", "str", "Listen with HTTPS.", repeat=True,
        **refused("uisge does not terminate TLS; put nginx (or another proxy) in front and use `socket` or `http-socket`")),
    opt("protocol", "choice", "Protocol of `socket` listeners: `uwsgi` (default) or `http`/`http11`.",
        aliases=("socket-protocol",), default="uwsgi", extra={"choices": ("uwsgi", "http", "http11")}),
    opt("listen", "int", "Listen backlog of every socket. Above net.core.somaxconn uisge warns and uses the "
        "system maximum.", short="l", default=1024,
        deviation="Default backlog 1024 instead of 100, and a value above net.core.somaxconn is clamped with "
        "a warning instead of aborting start-up."),
    opt("chmod-socket", "chmod", "Mode of unix sockets (`660`); alone it means 666.", short="C",
        optional_value=True, metavar="MODE"),
    opt("chown-socket", "str", "Owner of unix sockets, `user[:group]`.", metavar="USER[:GROUP]"),
    opt("abstract-socket", "flag", "Put unix sockets in the Linux abstract namespace.", short="a"),
    opt("shared-socket", "address", "Bind a socket before dropping privileges.", repeat=True,
        **refused("uisge binds every socket before dropping privileges, so `socket = :80` with `uid` works "
                  "as it is; use the address directly instead of `=N`")),
    opt("socket-timeout", "int", "Seconds allowed for reading a request head and each body read or response "
        "write before the connection is cut.", short="z", default=60,
        deviation="Default 60 s instead of 4 s: a slow mobile client uploading a form is not cut off; slow-"
        "header attacks still cost no thread (connections wait in the event loop)."),
    opt("buffer-size", "int", "Largest request head (HTTP headers or uwsgi var block) in bytes; larger gets "
        "431 (HTTP) or a logged error reply (uwsgi).", short="b", default=65535,
        deviation="Default 65535 (the uwsgi packet maximum) instead of 4096: big cookies and JWTs no longer "
        "cause `invalid request block size` 502s."),
    opt("post-buffering", "int", "Bytes of a request body kept in memory; the rest goes to a temporary file as "
        "it arrives. The whole body is always read before the app runs (0: 64 KiB).", default=0,
        deviation="Always on (64 KiB in RAM when unset): uWSGI without it lets the app read the socket directly, "
        "so a slow upload holds a worker."),
    opt("post-buffering-bufsize", "int", "Read chunk size while buffering bodies.", default=8192,
        **ignored("uisge sizes its reads itself")),
    opt("limit-post", "int", "Largest request body in bytes; larger gets 413.", default=0),
    opt("thunder-lock", "flag", "Serialise accept() across workers.", **ignored(
        "uisge workers accept from a non-blocking event loop, which has no thundering herd to serialise")),
    opt("reuse-port", "flag", "Set SO_REUSEPORT on TCP sockets.", ),
    opt("so-keepalive", "flag", "Enable TCP keepalive probes on client connections (TCP listeners)."),
    opt("tcp-nodelay", "flag", "Set TCP_NODELAY on client connections.", **ignored(
        "uisge always sets TCP_NODELAY on TCP client connections")),
    opt("uwsgi-allow-from", "str", "Addresses (CIDR) allowed to talk the uwsgi protocol; default loopback, "
        "unix sockets and private ranges.", repeat=True, metavar="CIDR", **ignored(
            "peer allow-lists are not implemented yet; bind `socket` to loopback or a unix socket")),
    opt("max-vars", "int", "Most key/value pairs in one uwsgi packet.", short="v", default=512),
    opt("honour-stdin", "flag", "Do not remap stdin to /dev/null.", **ignored("uisge leaves stdin alone")),
    opt("undeferred-accept", "flag", "Do not use TCP_DEFER_ACCEPT (by default a TCP connection reaches a worker "
        "only once its request starts to arrive, or after socket-timeout)."),
)
