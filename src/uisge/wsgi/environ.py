"""The WSGI environ (PEP 3333, uWSGI's shape): the constant keys of a listener, the body as wsgi.input,
and the environ of a uwsgi request (the vars exactly as nginx sent them).

HTTP requests get their CGI keys from the parser (protocol/http.py) while it reads the head. The
constant keys live in a base dict copied once per request. No sockets here.
"""

from __future__ import annotations

import io
import sys
import tempfile
from typing import Any

from uisge.protocol.uwsgi import UwsgiRequest


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


def uwsgi_environ(base: dict[str, Any], req: UwsgiRequest, body: list[bytes], size: int,
                  spill: int) -> dict[str, Any]:
    vars_ = req.vars
    if "HTTP_CONTENT_TYPE" in vars_ or "HTTP_CONTENT_LENGTH" in vars_:
        # nginx sends request headers as HTTP_* next to its CONTENT_* params; PEP 3333 wants only the latter
        for cgi in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            value = vars_.pop("HTTP_" + cgi, None)
            if value is not None and cgi not in vars_:
                vars_[cgi] = value
    env = {**base, **vars_}
    if "HTTPS" in vars_ or "UWSGI_SCHEME" in vars_ or "HTTP_X_FORWARDED_PROTO" in vars_:
        https = vars_.get("HTTPS", "")
        scheme = vars_.get("UWSGI_SCHEME") or vars_.get("HTTP_X_FORWARDED_PROTO")
        if https[:2].lower() == "on" or https[:1] == "1":
            env["wsgi.url_scheme"] = "https"
        elif scheme in ("http", "https"):
            env["wsgi.url_scheme"] = scheme
    if "SCRIPT_NAME" in vars_ and req.modifier1 == 30:
        # UWSGI_MODIFIER_MANAGE_PATH_INFO: strip SCRIPT_NAME off PATH_INFO
        script = vars_["SCRIPT_NAME"]
        path = env.get("PATH_INFO", "")
        if script and path.startswith(script):
            env["PATH_INFO"] = path[len(script):]
    if "PATH_INFO" not in env:
        env["PATH_INFO"] = ""
    if "QUERY_STRING" not in env:
        env["QUERY_STRING"] = ""
    if "REQUEST_METHOD" not in env:
        env["REQUEST_METHOD"] = "GET"
    env["wsgi.input"] = make_input(body, size, spill)
    return env
