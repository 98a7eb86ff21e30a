"""The ASGI HTTP connection scope of a request, from the environ the WSGI path builds for it (so both protocols,
mountpoints, X-Forwarded-Proto from trusted peers and every request check are shared) and, for HTTP, the raw
header list as received (ASGI keeps duplicates and order; the environ merges them). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

ASGI = {"version": "3.0", "spec_version": "2.3"}
_VERSIONS = {"HTTP/1.1": "1.1", "HTTP/1.0": "1.0", "HTTP/2": "2", "HTTP/2.0": "2"}
_CGI_HEADERS = {"CONTENT_TYPE": b"content-type", "CONTENT_LENGTH": b"content-length"}


def http_scope(env: dict[str, Any], raw_headers: list | None, state: dict | None = None) -> dict[str, Any]:
    """`raw_headers`: the HTTP head's (name, value) byte pairs; None for a uwsgi request, whose headers are
    the environ's HTTP_* vars (nginx sends them so) plus CONTENT_TYPE and CONTENT_LENGTH. (The hot path of
    every ASGI request: the environ of an HTTP request always has the keys read with [] here.)"""
    if raw_headers is None:
        headers = [(_CGI_HEADERS[k], v.encode("latin-1")) for k in _CGI_HEADERS if (v := env.get(k))]
        headers += [(k[5:].lower().replace("_", "-").encode("latin-1"), v.encode("latin-1"))
                    for k, v in env.items() if k[:5] == "HTTP_"]
        uri = env.get("REQUEST_URI", "")
        version = _VERSIONS.get(env.get("SERVER_PROTOCOL", ""), "1.1")
    else:
        headers = [(name.lower(), value) for name, value in raw_headers]
        uri = env["REQUEST_URI"]
        version = _VERSIONS[env["SERVER_PROTOCOL"]]
    script = env["SCRIPT_NAME"]
    path_info = env["PATH_INFO"]
    # the whole path, root_path included (as uvicorn and Starlette's router read it); the environ holds it
    # decoded as latin-1 (PEP 3333), ASGI wants it decoded as UTF-8
    path = script + path_info if script else path_info
    if not path.isascii():
        path = path.encode("latin-1").decode("utf-8", "replace")
    raw_path = uri.partition("?")[0] if "?" in uri else uri
    scope = {
        "type": "http",
        "asgi": ASGI,
        "http_version": version,
        "method": env["REQUEST_METHOD"],
        "scheme": env["wsgi.url_scheme"],
        "path": path,
        "raw_path": raw_path.encode("latin-1") if raw_path else path_info.encode("latin-1"),
        "query_string": env["QUERY_STRING"].encode("latin-1"),
        "root_path": script,
        "headers": headers,
        "client": _peer(env.get("REMOTE_ADDR"), env.get("REMOTE_PORT")),
        "server": _peer(env.get("SERVER_NAME"), env.get("SERVER_PORT")),
    }
    if state is not None:
        scope["state"] = dict(state)  # lifespan state: a shallow copy per request, as the spec asks
    return scope


_PEERS: dict[tuple[str, str], tuple[str, int]] = {}


def _peer(host: str | None, port: str | None) -> tuple[str, int] | None:
    """(host, port) as ASGI wants it; cached (tuples are immutable), since servers and most clients repeat."""
    if not host:
        return None
    key = (host, port or "")
    found = _PEERS.get(key)
    if found is None:
        try:
            found = (host, int(port or 0))
        except ValueError:
            found = (host, 0)
        if len(_PEERS) >= 4096:
            _PEERS.clear()
        _PEERS[key] = found
    return found


def websocket_scope(env: dict[str, Any], raw_headers: list, state: dict | None, subprotocols: list[str]) -> dict[str, Any]:
    """The websocket connection scope: the HTTP one without a method, ws/wss, the subprotocols the client offers,
    and the denial-response extension (websocket.http.response.*), which uisge offers."""
    scope = http_scope(env, raw_headers, state)
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    del scope["method"]
    scope["subprotocols"] = subprotocols
    scope["extensions"] = {"websocket.http.response": {}}
    return scope
