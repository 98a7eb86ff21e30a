"""Options of the HTTP side: the `http` address, keep-alive, header handling."""

from uisge.config.declare import ignored, refused, topic

opt = topic("http")

OPTIONS = (
    opt("http", "address", "Serve HTTP for browsers on this address. uWSGI runs a separate router process; "
        "uisge's workers serve it directly, which looks the same from outside.", repeat=True,
        metavar="ADDRESS",
        deviation="`http` is served by the workers directly (no extra router process, no uwsgi hop); "
        "the address, the responses and the environ are the same."),
    opt("http-timeout", "int", "Idle time in seconds before a keep-alive HTTP connection is closed.",
        default=75, deviation="Keep-alive is on with a 75 s idle timeout (uWSGI's router: off, 60 s), longer "
        "than common load balancers' idle timeouts, so they never reuse a connection we are closing."),
    opt("http-keepalive", "flag", "Keep HTTP/1.1 connections open between requests.", default=True),
    opt("http-keepalive-requests", "int", "Close a keep-alive connection after this many requests (0: never).",
        default=0),
    opt("http-processes", "int", "Number of HTTP router processes.", aliases=("http-workers",), default=1,
        **ignored("uisge has no separate HTTP router: the workers serve `http` directly")),
    opt("http-var", "keyval", "Add KEY=VALUE to the environ of every request arriving on `http` listeners (uWSGI's "
        "HTTP router adds it to the requests it passes on).", repeat=True, metavar="KEY=VALUE"),
    opt("http-to", "str", "Forward HTTP to other uwsgi servers.", repeat=True,
        **refused("uisge is not a load balancer; put nginx or haproxy in front of several uisge instances")),
    opt("http-modifier1", "int", "modifier1 used by the HTTP router.", **ignored("uisge has no separate HTTP router")),
    opt("http-auto-chunked", "flag", "Chunk responses without Content-Length.", **ignored(
        "uisge always chunks HTTP/1.1 responses that have no Content-Length")),
    opt("http-chunked-input", "flag", "Accept chunked request bodies.", **ignored(
        "uisge always decodes chunked request bodies for the app (wsgi.input, with wsgi.input_terminated = True)")),
    opt("add-header", "str", "Add a response header to every response.", repeat=True, metavar="HEADER: VALUE"),
    opt("allow-underscore-headers", "flag", "Pass request headers whose names contain `_` to the app.",
        deviation="Request headers with `_` in their names are dropped by default (they would collide with "
        "`-` headers in the environ: gunicorn#2799); `allow-underscore-headers` restores uWSGI's behaviour."),
    opt("websockets-max-size", "int", "The largest websocket message an ASGI app is given, in KiB (fragments "
        "joined); a larger one closes the websocket with 1009.", aliases=("websocket-max-size",), default=1024,
        metavar="KIB"),
    opt("websockets-ping-freq", "int", "Seconds without a frame from a websocket client before uisge pings it.",
        aliases=("websocket-ping-freq",), default=30, metavar="SECONDS"),
    opt("websockets-pong-tolerance", "int", "Seconds a websocket client has to answer a ping before its "
        "connection is cut.", aliases=("websocket-pong-tolerance",), default=3, metavar="SECONDS"),
    opt("manage-script-name", "flag", "Pick the app by the longest `mount` prefix of PATH_INFO and move it to "
        "SCRIPT_NAME."),
)
