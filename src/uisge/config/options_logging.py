"""Options about the server log and the request log."""

from uisge.config.declare import ignored, topic

opt = topic("logging")

OPTIONS = (
    opt("disable-logging", "flag", "Do not log requests (errors and server messages are still logged).",
        short="L"),
    opt("log-format", "str", "Request log line with uWSGI's %(var) variables, e.g. "
        "`%(addr) - %(user) [%(ltime)] \"%(method) %(uri) %(proto)\" %(status) %(size)`.",
        aliases=("logformat",), metavar="FORMAT"),
    opt("logto", "path", "Write the log to this file instead of stderr.", metavar="FILE"),
    opt("logto2", "path", "Write the log to this file, opened after dropping privileges.", metavar="FILE"),
    opt("log-maxsize", "int", "Rotate the log file when it grows past this many bytes.", default=0),
    opt("log-reopen", "flag", "Reopen the log file on reload (uisge always does: the reloaded master opens it anew)."),
    opt("log-truncate", "flag", "Truncate the log file at start-up."),
    opt("log-date", "str", "Prefix log lines with the date: uWSGI's `Wed Dec  2 03:32:40 2026 - `, or this strftime "
        "format followed by ` - `.", aliases=("logdate",), optional_value=True),
    opt("log-micros", "flag", "Log request times in microseconds."),
    opt("log-x-forwarded-for", "flag", "Log the X-Forwarded-For address instead of the peer address."),
    opt("log-json", "flag", "Write request log lines as JSON objects (one per line; uisge only)."),
    opt("log-4xx", "flag", "Log 4xx responses even with disable-logging."),
    opt("log-5xx", "flag", "Log 5xx responses even with disable-logging."),
    opt("log-slow", "int", "Log requests slower than this many milliseconds even with disable-logging."),
    opt("log-big", "int", "Log responses bigger than this many bytes even with disable-logging."),
    opt("log-zero", "flag", "Log responses with an empty body even with disable-logging."),
    opt("log-sendfile", "flag", "Log sendfile() responses even with disable-logging."),
    opt("ignore-sigpipe", "flag", "Do not log SIGPIPE.", **ignored("uisge never logs client disconnects as errors")),
    opt("ignore-write-errors", "flag", "Do not log write errors.", **ignored(
        "uisge never logs client disconnects as errors")),
    opt("disable-write-exception", "flag", "Do not raise on write errors.", **ignored(
        "uisge never raises client disconnects into the app")),
    opt("logger", "str", "Where the log goes, as uWSGI's logger plugins say it: `file:PATH` (or "
        "`file:logfile=PATH,maxsize=BYTES`), the same as logto; `stdio`, stderr. Other plugins (syslog, socket, ...) "
        "are refused at start with what to use instead.", repeat=True, metavar="PLUGIN:ARGS"),
    opt("req-logger", "str", "Where the request lines go: `file:PATH` (server messages and errors stay on the "
        "log), or `stdio`. Other plugins are refused at start.", aliases=("logger-req",), repeat=True,
        metavar="PLUGIN:ARGS"),
    opt("log-master", "flag", "Let the master write the log.", **ignored("uisge processes write the log directly")),
    opt("threaded-logger", "flag", "Log from a thread.", **ignored("see `log-master`")),
)
