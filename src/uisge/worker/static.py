"""Static files before the app, as uWSGI's static-map does (reference §8): `static-map`, `static-map2`,
`static-check`, `static-index`, `static-skip-ext`, `static-safe`, Expires rules, precompressed `.br`/`.gz`.

`StaticFiles.match(environ)` returns a WSGI callable that serves the file, or None to let the app
answer. It resolves the real path and refuses anything outside the mapped directory (or a
`static-safe` one): `..`, encoded slashes, NUL, symlinks pointing out. A map `/static` never serves
`/static2`. Answers: 200, 304 (If-None-Match / If-Modified-Since), 206 / 416 for one byte range, HEAD.
Small files are read and sent with the head in one write; larger ones go out with sendfile(). Files
are looked up on each request, so new ones are served without a restart.

The common case, a plain GET or HEAD of a small file, is answered from a `Prebuilt`: the status,
the checked header lines and the content, made once per file version (device, inode, mtime, size)
and kept with the path's resolution for a second. The file is still stat()ed on every request, so a
changed file is never answered with stale bytes. Conditional, ranged and content-negotiated
requests take the general path. This module must not write to the socket itself: it answers
through the worker's Response (wsgi/adapter.py), so logging, stats and keep-alive stay in one place.
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import re
import stat
import time
from typing import Any, Callable

from uisge.wsgi.adapter import FileWrapper

SMALL = 64 * 1024
# request headers that make an answer depend on more than the file: these take the general path
_CONDITIONAL = ("HTTP_RANGE", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")


# How long a PATH_INFO -> real path resolution is trusted, and how long a file's stat() is: a stat
# costs about 3 µs, a tenth of a hello-world request, so under load one stat serves every request for
# that file within a millisecond. A file changed on disk is served new within FRESH of the change.
RESOLVED_FOR = 1.0
FRESH = 0.001


class Resolution:
    """What a PATH_INFO resolved to (None: not a static file), and the prebuilt answer for it."""

    __slots__ = ("until", "real", "ready", "checked")

    def __init__(self, until: float, real: str | None) -> None:
        self.until = until
        self.real = real
        self.ready: Prebuilt | None = None
        self.checked = 0.0


class Prebuilt:
    """A whole 200 answer for one version of a small file: header lines already checked and encoded."""

    __slots__ = ("key", "lines", "content_length", "header_count", "body")

    def __init__(self, key: tuple, headers: list[tuple[str, str]], body: bytes) -> None:
        self.key = key
        self.lines = [f"{name}: {value}\r\n".encode("latin-1") for name, value in headers]
        self.content_length = len(body)
        self.header_count = len(headers)
        self.body = body
# sane types where the system's mime.types is missing or dated
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
         ".woff2": "font/woff2", ".woff": "font/woff", ".json": "application/json", ".wasm": "application/wasm",
         ".map": "application/json", ".html": "text/html", ".txt": "text/plain", ".ico": "image/x-icon",
         ".webp": "image/webp", ".avif": "image/avif"}
TEXT = ("text/", "application/json", "application/javascript", "image/svg+xml")


def _real(path: str) -> str:
    return os.path.realpath(path)


class StaticFiles:
    def __init__(self, opts, log: Callable[[str], None], announce: bool = False) -> None:
        self.log = log
        self.maps: list[tuple[str, str, bool]] = []  # (mount, directory or file, append the whole PATH_INFO)
        for option, whole in (("static_map", False), ("static_map2", True)):
            for mount, target in getattr(opts, option):
                mount = mount.rstrip("/") or "/"
                self.maps.append((mount, target, whole))
                if announce:
                    log(f"[uisge-static] added mapping for {mount} => {target}")
        self.checks = list(opts.static_check)
        self.index = list(opts.static_index)
        self.skip = tuple(e if e.startswith(".") else "." + e for e in opts.static_skip_ext)
        self.safe = [_real(p) for p in opts.static_safe]
        self.expires_uri = [_rule(r) for r in opts.static_expires_uri]
        self.expires_file = [_rule(r) for r in opts.static_expires]
        self.expires_type = {k: int(v) for k, v in opts.static_expires_type}
        self.expires_type_mtime = {k: int(v) for k, v in opts.static_expires_type_mtime}
        self.gzip_all = bool(opts.static_gzip_all)
        self.gzip = [re.compile(r) for r in opts.static_gzip]
        self.gzip_dirs = list(opts.static_gzip_dir)
        self.gzip_exts = list(opts.static_gzip_ext)
        self.types = mimetypes.MimeTypes()
        for path in opts.mime_file:
            self.types.read(path)
        self.cache: dict[tuple[int, int, int, int], bytes] = {}  # (dev, inode, mtime_ns, size) -> content
        self.heads: dict[tuple, list[tuple[str, str]]] = {}  # the same key + encoding -> validator headers
        # PATH_INFO -> Resolution: realpath() costs an lstat per path component, so a resolution is
        # kept for RESOLVED_FOR; the file itself is stat()ed again whenever FRESH has passed
        self.resolved: dict[str, Resolution] = {}
        self.real_bases: dict[str, str] = {}
        self.ctypes: dict[str, str | None] = {}
        self.negotiates = bool(self.gzip_all or self.gzip or self.gzip_dirs or self.gzip_exts)

    def __bool__(self) -> bool:
        return bool(self.maps or self.checks)

    # -- finding the file
    def match(self, env: dict[str, Any]) -> Callable | Prebuilt | None:
        """What answers this request: a Prebuilt (send it as is), a WSGI callable, or None (the app)."""
        if env.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        path_info = env.get("PATH_INFO", "")
        now = time.monotonic()
        known = self.resolved.get(path_info)
        if known is not None and known.until > now:
            real = known.real
            if real is None:
                return None
            ready = known.ready
            if ready is not None and known.checked + FRESH > now and self._plain(env):
                return ready
            try:
                st = os.stat(real)
            except OSError:
                st = None
            if st is not None and stat.S_ISREG(st.st_mode):
                if ready is not None and ready.key == (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size):
                    known.checked = now
                    if self._plain(env):
                        return ready
                else:
                    known.ready = None
                return self._server(real, st, path_info)
            known.ready = None
        found = self._match(env, path_info)
        if len(self.resolved) > 4096:
            self.resolved.clear()
        self.resolved[path_info] = Resolution(now + RESOLVED_FOR, found)
        if found is None:
            return None
        try:
            return self._server(found, os.stat(found), path_info)
        except OSError:
            return None

    def _plain(self, env: dict[str, Any]) -> bool:
        """True when the answer depends on the file alone (no validators, ranges or encodings asked)."""
        for name in _CONDITIONAL:
            if name in env:
                return False
        return not (self.negotiates and "HTTP_ACCEPT_ENCODING" in env)

    def _match(self, env: dict[str, Any], path_info: str) -> str | None:
        """The real path of the file to serve for `path_info`, or None."""
        if self.skip and path_info.endswith(self.skip):
            return None
        if "\0" in path_info:
            return None
        for base in self.checks:
            found = self._resolve(base, base + "/" + path_info.lstrip("/"), path_info)
            if found:
                return found[0]
        for mount, target, whole in self.maps:
            if mount != "/" and path_info != mount and not path_info.startswith(mount + "/"):
                continue  # `/static` maps /static and /static/..., never /static2
            rest = path_info if whole else path_info[len(mount):]
            candidate = target if os.path.isfile(target) and not whole else target.rstrip("/") + "/" + rest.lstrip("/")
            found = self._resolve(target, candidate, path_info)
            if found:
                return found[0]
        return None

    def _resolve(self, base: str, candidate: str, path_info: str) -> tuple[str, os.stat_result] | None:
        real_base = self.real_bases.get(base)
        if real_base is None:
            real_base = self.real_bases[base] = _real(base)
        real = _real(candidate)
        inside = real == real_base or real.startswith(real_base.rstrip("/") + "/")
        if not inside and not any(real == s or real.startswith(s.rstrip("/") + "/") for s in self.safe):
            if os.path.exists(real):
                self.log(f"[uisge-fileserve] security error: {path_info} resolves to {real}, which is not under "
                         f"{real_base} or a static-safe path; not served")
            return None
        try:
            st = os.stat(real)
        except OSError:
            return None
        if stat.S_ISDIR(st.st_mode):
            for name in self.index:
                try:
                    index_st = os.stat(os.path.join(real, name))
                except OSError:
                    continue
                if stat.S_ISREG(index_st.st_mode):
                    return os.path.join(real, name), index_st
            return None
        if not stat.S_ISREG(st.st_mode) or (self.skip and real.endswith(self.skip)):
            return None
        return real, st

    # -- answering
    def _server(self, path: str, st: os.stat_result, path_info: str) -> Callable:
        def serve(env: dict[str, Any], start_response):
            return self._respond(env, start_response, path, st, path_info)
        return serve

    def _content_type(self, path: str) -> str | None:
        ext = os.path.splitext(path)[1].lower()
        if ext in self.ctypes:
            return self.ctypes[ext]
        ctype = TYPES.get(ext) or self.types.guess_type("x" + ext, strict=False)[0]
        if ctype and ctype.startswith(TEXT) and "charset" not in ctype:
            ctype += "; charset=utf-8"
        if len(self.ctypes) < 1024:
            self.ctypes[ext] = ctype
        return ctype

    def _precompressed(self, env: dict[str, Any], path: str) -> tuple[str, os.stat_result, str] | None:
        accept = env.get("HTTP_ACCEPT_ENCODING", "")
        if not accept or not (self.gzip_all or any(r.search(path) for r in self.gzip)
                              or any(path.startswith(d) for d in self.gzip_dirs)
                              or any(path.endswith(e) for e in self.gzip_exts)):
            return None
        for coding, suffix in (("br", ".br"), ("gzip", ".gz")):
            if coding in accept:
                try:
                    st = os.stat(path + suffix)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    return path + suffix, st, coding
        return None

    def _respond(self, env, start_response, path: str, st: os.stat_result, path_info: str):
        ctype = self._content_type(path)
        headers: list[tuple[str, str]] = []
        encoded = self._precompressed(env, path)
        body_path = path
        if encoded is not None:
            body_path, st, coding = encoded
            headers.append(("Content-Encoding", coding))
        if self.gzip_all or self.gzip or self.gzip_dirs or self.gzip_exts:
            headers.append(("Vary", "Accept-Encoding"))
        key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        validators = self.heads.get(key)
        if validators is None:
            validators = [("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True)),
                          ("ETag", f'"{st.st_mtime_ns:x}-{st.st_size:x}"'), ("Accept-Ranges", "bytes")]
            if len(self.heads) >= 4096:
                self.heads.clear()
            self.heads[key] = validators
        last_modified, etag = validators[0][1], validators[1][1]
        headers += validators
        if ctype:
            headers.append(("Content-Type", ctype))
        if self.expires_uri or self.expires_file or self.expires_type or self.expires_type_mtime:
            headers += self._expires(env, path, ctype, st)
        if _not_modified(env, etag, st.st_mtime):
            start_response("304 Not Modified", [h for h in headers if h[0] in ("ETag", "Last-Modified", "Vary")])
            return []
        size = st.st_size
        start, end = 0, size - 1
        status = "200 OK"
        wanted = env.get("HTTP_RANGE")
        if wanted and _if_range_ok(env, etag, last_modified):
            byte_range = _parse_range(wanted, size)
            if byte_range is None:
                start_response("416 Range Not Satisfiable", [("Content-Range", f"bytes */{size}"),
                                                              ("Content-Length", "0")])
                return []
            if byte_range != (0, size - 1):
                start, end = byte_range
                status = "206 Partial Content"
                headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        length = max(0, end - start + 1)
        headers.append(("Content-Length", str(length)))
        if env.get("REQUEST_METHOD") == "HEAD":
            start_response(status, headers)
            return []
        if size <= SMALL:
            data = self.cache.get(key)
            if data is None:
                with open(body_path, "rb") as fh:
                    data = fh.read(size)
                if len(self.cache) >= 1024:
                    self.cache.clear()
                self.cache[key] = data
            if status == "200 OK" and encoded is None and self._plain(env):
                self._keep(path_info, path, Prebuilt(key, headers, data))
            start_response(status, headers)
            return [data[start:end + 1]]
        fh = open(body_path, "rb")  # noqa: SIM115 - closed by FileWrapper.close()
        fh.seek(start)
        start_response(status, headers)
        return FileWrapper(fh)

    def _keep(self, path_info: str, path: str, ready: Prebuilt) -> None:
        """Remember a prebuilt answer with the path's resolution (until that resolution expires)."""
        known = self.resolved.get(path_info)
        if known is not None and known.real == path:
            known.ready = ready
            known.checked = time.monotonic()

    def _expires(self, env, path: str, ctype: str | None, st: os.stat_result) -> list[tuple[str, str]]:
        uri = env.get("REQUEST_URI", "")
        for regex, secs in self.expires_uri:
            if regex.search(uri):
                return _expires_headers(time.time() + secs, secs)
        for regex, secs in self.expires_file:
            if regex.search(path):
                return _expires_headers(time.time() + secs, secs)
        base_type = (ctype or "").split(";")[0]
        if base_type in self.expires_type:
            secs = self.expires_type[base_type]
            return _expires_headers(time.time() + secs, secs)
        if base_type in self.expires_type_mtime:
            secs = self.expires_type_mtime[base_type]
            return _expires_headers(st.st_mtime + secs, secs)
        return []


def _rule(text: str) -> tuple[re.Pattern, int]:
    regex, _, secs = text.strip().rpartition(" ")
    return re.compile(regex.strip()), int(secs)


def _expires_headers(when: float, secs: int) -> list[tuple[str, str]]:
    return [("Expires", email.utils.formatdate(when, usegmt=True)), ("Cache-Control", f"max-age={max(0, secs)}")]


def _not_modified(env, etag: str, mtime: float) -> bool:
    match = env.get("HTTP_IF_NONE_MATCH")
    if match is not None:
        return match.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in match.split(",")]
    since = env.get("HTTP_IF_MODIFIED_SINCE")
    if since:
        try:
            return int(mtime) <= email.utils.parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError, IndexError):
            return False
    return False


def _if_range_ok(env, etag: str, last_modified: str) -> bool:
    condition = env.get("HTTP_IF_RANGE")
    return condition is None or condition.strip() in (etag, last_modified)


def _parse_range(header: str, size: int) -> tuple[int, int] | None | tuple:
    """One `bytes=` range as (start, end), None when unsatisfiable, or the whole file when it is not a
    single well-formed range (several ranges are answered with the whole file)."""
    whole = (0, size - 1)
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return whole
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()) or (first and not first.isdigit()) or \
            (last and not last.isdigit()):
        return whole
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return None
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)
