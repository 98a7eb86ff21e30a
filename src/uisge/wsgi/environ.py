"""The WSGI environ (PEP 3333, uWSGI's shape), built in one place from a protocol RequestHead: the
constant keys of a listener (a base dict copied once per request), then the request's own keys.

HTTP: headers become HTTP_* keys (duplicates joined with ", ", names with `_` dropped unless allowed,
so `X_Real_IP` cannot pose as `X-Real-IP`), PATH_INFO percent-decoded with dot-segments resolved and
repeated slashes kept, REQUEST_URI raw. uwsgi: the vars exactly as nginx sent them, with nginx's
duplicate HTTP_CONTENT_* dropped. No sockets here.
"""

from __future__ import annotations

import sys
from typing import Any

from uisge.protocol.events import RequestHead
from uisge.protocol.http import path_info

_CACHE_MAX = 4096
# header name (bytes, as sent) -> environ key, or None for a name that never reaches the app
_KEYS: dict[bool, dict[bytes, str | None]] = {False: {}, True: {}}


def header_key(name: bytes, allow_underscore: bool) -> str | None:
    """The CGI key of a request header: `X-Real-IP` -> `HTTP_X_REAL_IP`; None when it is dropped."""
    keys = _KEYS[allow_underscore]
    if name in keys:
        return keys[name]
    text = name.decode("latin-1").upper()
    if "_" in text and not allow_underscore:
        key = None  # `X_Real_IP` would collide with `X-Real-IP` (gunicorn#2799 class): dropped
    elif text in ("CONTENT-TYPE", "CONTENT-LENGTH"):
        key = text.replace("-", "_")
    else:
        key = "HTTP_" + text.replace("-", "_")
    if len(keys) < _CACHE_MAX:
        keys[name] = key
    return key


def base_environ(server_name: str, server_port: str, multithread: bool, multiprocess: bool,
                 file_wrapper: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "SCRIPT_NAME": "",
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    if file_wrapper is not None:
        env["wsgi.file_wrapper"] = file_wrapper
    return env


_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}
# request target -> (REQUEST_URI, PATH_INFO, QUERY_STRING): sites are asked for the same few targets
_TARGETS: dict[bytes, tuple[str, str, str]] = {}
_TARGET_MAX = 256


def _target(target: bytes) -> tuple[str, str, str]:
    uri = target.decode("latin-1")
    if uri[:1] == "/" and "?" not in uri and "%" not in uri and "/." not in uri and "#" not in uri:
        entry = (uri, uri, "")
    else:
        entry = (uri, *path_info(target))
    if len(target) <= _TARGET_MAX:
        if len(_TARGETS) >= _CACHE_MAX:
            _TARGETS.clear()  # full of one-off targets: start again with what is asked for now
        _TARGETS[target] = entry
    return entry


def http_environ(base: dict[str, Any], remote_addr: str, remote_port: str, head: RequestHead, allow_underscore: bool,
                 trusted: bool) -> dict[str, Any]:
    """The environ of an HTTP request: the listener's constant keys (`base`), the peer, the head."""
    env = base.copy()
    env["REMOTE_ADDR"] = remote_addr
    env["REMOTE_PORT"] = remote_port
    keys = _KEYS[allow_underscore]
    for name, value in head.headers:
        try:
            key = keys[name]
        except KeyError:
            key = header_key(name, allow_underscore)
        if key is None:
            continue
        if key in env:
            env[key] = env[key] + ", " + value.decode("latin-1")
        else:
            env[key] = value.decode("latin-1")
    target = head.target
    try:
        env["REQUEST_URI"], env["PATH_INFO"], env["QUERY_STRING"] = _TARGETS[target]
    except KeyError:
        env["REQUEST_URI"], env["PATH_INFO"], env["QUERY_STRING"] = _target(target)
    method = head.method
    env["REQUEST_METHOD"] = _METHODS.get(method) or method.decode("latin-1")
    env["SERVER_PROTOCOL"] = head.version
    if head.chunked and head.content_length >= 0:
        env["CONTENT_LENGTH"] = str(head.content_length)  # a de-chunked body of known length
    if trusted and "HTTP_X_FORWARDED_PROTO" in env:
        proto = env["HTTP_X_FORWARDED_PROTO"]
        if proto in ("https", "http"):
            env["wsgi.url_scheme"] = proto
    return env


def uwsgi_environ(head: RequestHead) -> dict[str, Any]:
    """The environ of a uwsgi request: the vars as sent, which the parser already added to a copy of the
    listener's constant keys (UwsgiParser.configured(base=...)), so no merge is needed here."""
    vars_ = env = head.vars
    if "PATH_INFO" not in vars_ or "QUERY_STRING" not in vars_ or "REQUEST_METHOD" not in vars_ \
            or "HTTP_CONTENT_TYPE" in vars_ or "HTTP_CONTENT_LENGTH" in vars_ or "HTTPS" in vars_ \
            or "UWSGI_SCHEME" in vars_ or "HTTP_X_FORWARDED_PROTO" in vars_ or head.modifier1:
        _uncommon(env, vars_, head)
    return env


def _uncommon(env: dict[str, Any], vars_: dict[str, str], head: RequestHead) -> None:
    if "HTTP_CONTENT_TYPE" in vars_ or "HTTP_CONTENT_LENGTH" in vars_:
        # nginx sends request headers as HTTP_* next to its CONTENT_* params; PEP 3333 wants only the latter
        for cgi in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            value = env.pop("HTTP_" + cgi, None)
            if value is not None and cgi not in vars_:
                env[cgi] = value
    if "HTTPS" in vars_ or "UWSGI_SCHEME" in vars_ or "HTTP_X_FORWARDED_PROTO" in vars_:
        https = vars_.get("HTTPS", "")
        scheme = vars_.get("UWSGI_SCHEME") or vars_.get("HTTP_X_FORWARDED_PROTO")
        if https[:2].lower() == "on" or https[:1] == "1":
            env["wsgi.url_scheme"] = "https"
        elif scheme in ("http", "https"):
            env["wsgi.url_scheme"] = scheme
    if "SCRIPT_NAME" in vars_ and head.modifier1 == 30:
        # UWSGI_MODIFIER_MANAGE_PATH_INFO: strip SCRIPT_NAME off PATH_INFO
        script = vars_["SCRIPT_NAME"]
        path = env.get("PATH_INFO", "")
        if script and path.startswith(script):
            env["PATH_INFO"] = path[len(script):]
    for key, default in (("PATH_INFO", ""), ("QUERY_STRING", ""), ("REQUEST_METHOD", "GET")):
        if key not in env:
            env[key] = default
