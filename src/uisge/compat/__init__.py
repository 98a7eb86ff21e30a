"""What apps written for uWSGI import: the `uwsgi` module and `uwsgidecorators`. They become importable
(under those names) only in a uisge process, through `install()`; outside one, `import uwsgi` fails
as it does outside uWSGI."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

NAMES = {"uwsgi": "uisge.compat.uwsgi", "uwsgidecorators": "uisge.compat.uwsgidecorators"}
imported: set[str] = set()  # which of them the app imported (the master then keeps the scoreboard)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in NAMES:
            return None
        imported.add(fullname)
        real = importlib.import_module("uisge.compat.uwsgi") if fullname == "uwsgi" else None
        if real is not None:
            return importlib.util.spec_from_loader(fullname, _Alias(real))
        spec = importlib.util.find_spec(NAMES[fullname])
        return importlib.util.spec_from_file_location(fullname, spec.origin)


class _Alias(importlib.abc.Loader):
    """`import uwsgi` gives the one uisge.compat.uwsgi module object (its state is shared)."""

    def __init__(self, module) -> None:
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module) -> None:
        pass


def install() -> None:
    from uisge.compat import uwsgi

    uwsgi._refresh()
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
