"""Options of the static file server (static-map and friends)."""

from uisge.config.declare import ignored, refused, topic

opt = topic("static")


OPTIONS = (
    opt("static-map", "map", "Serve files: `/static=/var/static` maps URL prefix /static to that directory.",
        repeat=True, metavar="MOUNT=DIR"),
    opt("static-map2", "map", "Like static-map but appends the whole URL path to the directory.", repeat=True,
        metavar="MOUNT=DIR"),
    opt("static-check", "path", "Serve files found under this directory for any URL.", aliases=("check-static",),
        repeat=True, metavar="DIR"),
    opt("static-index", "str", "File names tried for directory URLs.", repeat=True, metavar="NAME"),
    opt("static-skip-ext", "str", "Never serve files with this extension.", repeat=True, metavar="EXT"),
    opt("static-safe", "path", "Allow symlinks from static dirs to point under this directory.", repeat=True),
    opt("static-expires-type", "keyval", "`MIME=SECONDS`: Expires header for a content type.", repeat=True),
    opt("static-expires-type-mtime", "keyval", "`MIME=SECONDS` counted from the file mtime.", repeat=True),
    opt("static-expires-uri", "str", "`REGEX SECONDS`: Expires header for matching URLs.", repeat=True),
    opt("static-expires", "str", "`REGEX SECONDS`: Expires header for matching file names.", repeat=True),
    opt("static-gzip", "str", "Serve FILE.gz for matching files when the client accepts gzip.", repeat=True),
    opt("static-gzip-all", "flag", "Serve FILE.gz / FILE.br whenever present and accepted."),
    opt("static-gzip-dir", "str", "Serve precompressed files under this prefix.", aliases=("static-gzip-prefix",),
        repeat=True),
    opt("static-gzip-ext", "str", "Serve precompressed files with this extension.", aliases=("static-gzip-suffix",),
        repeat=True),
    opt("mime-file", "path", "Extra MIME types file.", repeat=True),
    opt("honour-range", "flag", "Answer Range requests on static files (uisge always does).",
        deviation="Single byte ranges on static files are always answered (206/416); uWSGI needs "
        "`honour-range`. Several ranges get the whole file."),
    opt("file-serve-mode", "str", "`x-accel-redirect` or `x-sendfile` to let the front server send files.",
        **refused("not implemented: static-map sends files itself with sendfile() from the event loop, or let "
                  "nginx serve them with `location /static/ { alias ...; }` (docs/deployment.md)")),
    opt("offload-threads", "int", "Threads that send static files.", default=0, **ignored(
        "uisge sends files from its event loop with sendfile(), which frees the worker without extra threads")),
    opt("static-cache-paths", "int", "Cache resolved static paths.", **ignored("uisge resolves paths on each request")),
)
