"""Which interface an app callable speaks: "asgi" for a coroutine function or an object whose __call__ is one
(Django's ASGIHandler, Starlette, FastAPI, any ASGI middleware class instance), "wsgi" otherwise. Pure."""

from __future__ import annotations

import inspect
from typing import Any


def interface(app: Any, forced: str = "auto") -> str:
    """`forced`: the `interface` option (auto, wsgi, asgi)."""
    if forced != "auto":
        return forced
    if inspect.iscoroutinefunction(app):
        return "asgi"
    if not inspect.isclass(app) and inspect.iscoroutinefunction(getattr(app, "__call__", None)):
        return "asgi"
    return "wsgi"
