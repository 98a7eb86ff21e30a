"""The WSGI environ for one request, from an HTTP head or a uwsgi var block (PEP 3333, uWSGI's shape).

HTTP: CGI keys synthesised as uWSGI's http parser does (PATH_INFO decoded and dot-segments resolved,
REQUEST_URI raw, SERVER_NAME the host name, duplicate headers joined with ", "), headers with `_` in
their names dropped unless allowed. uwsgi: the vars exactly as nginx sent them. Per-request work only:
the constant keys live in a base dict copied once per request. No sockets here.
"""

from __future__ import annotations

import io
import sys
import tempfile
from typing import Any
from urllib.parse import unquote_to_bytes

from uisge.protocol.http import HttpRequest
from uisge.protocol.uwsgi import UwsgiRequest

_HEADER_KEYS: dict[bytes, str | None] = {}


def header_key(name: bytes, allow_underscore: bool) -> str | None:
    key = _HEADER_KEYS.get(name)
    if key is not None or name in _HEADER_KEYS:
        return key
    text = name.decode("latin-1").upper()
    if "_" in text and not allow_underscore:
        key = None
    elif text in ("CONTENT-TYPE", "CONTENT-LENGTH"):
        key = text.replace("-", "_")
    else:
        key = "HTTP_" + text.replace("-", "_")
    if len(_HEADER_KEYS) < 4096:
        _HEADER_KEYS[name] = key
    return key


def normalise_path(path: str) -> str:
    """Resolve `.`/`..` segments and collapse `//`, as uWSGI's http parser does."""
    out: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    result = "/" + "/".join(out)
    if path.endswith(("/", "/.", "/..")) and result != "/":
        result += "/"
    return result


def make_input(body: list[bytes], size: int, spill: int) -> Any:
    if not size:
        return io.BytesIO()
    if size <= spill:
        return io.BytesIO(body[0] if len(body) == 1 else b"".join(body))
    tmp = tempfile.TemporaryFile()
    for chunk in body:
        tmp.write(chunk)
    tmp.seek(0)
    return tmp


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


def http_environ(base: dict[str, Any], req: HttpRequest, peer: tuple[str, str], allow_underscore: bool,
                 spill: int, trust_forwarded: bool) -> dict[str, Any]:
    env = base.copy()
    target = req.target
    if target[:1] != b"/" and target != b"*":  # absolute-form: keep the path
        slash = target.find(b"/", target.find(b"//") + 2)
        target = target[slash:] if slash >= 0 else b"/"
    path, sep, query = target.partition(b"?")
    if b"#" in path:
        path = path.partition(b"#")[0]
    text = unquote_to_bytes(path).decode("latin-1") if b"%" in path else path.decode("latin-1")
    if "/." in text or "//" in text:
        text = normalise_path(text)
    env["REQUEST_METHOD"] = req.method.decode("latin-1")
    env["REQUEST_URI"] = req.target.decode("latin-1")
    env["PATH_INFO"] = text
    env["QUERY_STRING"] = query.decode("latin-1")
    env["SERVER_PROTOCOL"] = req.version
    env["REMOTE_ADDR"], env["REMOTE_PORT"] = peer
    for name, value in req.headers:
        key = _HEADER_KEYS.get(name) or header_key(name, allow_underscore)
        if key is None:
            continue
        if key in env:
            env[key] = env[key] + ", " + value.decode("latin-1")
        else:
            env[key] = value.decode("latin-1")
    if req.chunked:
        env["CONTENT_LENGTH"] = str(req.body_size)
    env["wsgi.input"] = make_input(req.body, req.body_size, spill)
    if trust_forwarded:
        proto = env.get("HTTP_X_FORWARDED_PROTO")
        if proto in ("https", "http"):
            env["wsgi.url_scheme"] = proto
    return env


def uwsgi_environ(base: dict[str, Any], req: UwsgiRequest, body: list[bytes], size: int,
                  spill: int) -> dict[str, Any]:
    env = base.copy()
    env.update(req.vars)
    https = req.vars.get("HTTPS", "")
    scheme = req.vars.get("UWSGI_SCHEME") or req.vars.get("HTTP_X_FORWARDED_PROTO")
    if https[:2].lower() == "on" or https[:1] == "1":
        env["wsgi.url_scheme"] = "https"
    elif scheme in ("http", "https"):
        env["wsgi.url_scheme"] = scheme
    if "SCRIPT_NAME" not in req.vars:
        env["SCRIPT_NAME"] = ""
    elif req.modifier1 == 30:  # UWSGI_MODIFIER_MANAGE_PATH_INFO: strip SCRIPT_NAME off PATH_INFO
        script = req.vars["SCRIPT_NAME"]
        path = env.get("PATH_INFO", "")
        if script and path.startswith(script):
            env["PATH_INFO"] = path[len(script):]
    env.setdefault("PATH_INFO", "")
    env.setdefault("QUERY_STRING", "")
    env.setdefault("REQUEST_METHOD", "GET")
    env["wsgi.input"] = make_input(body, size, spill)
    return env
