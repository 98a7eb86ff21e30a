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
        if fullname == "uwsgi":
            return importlib.util.spec_from_loader(fullname, _Alias(importlib.import_module(NAMES[fullname])))
        return importlib.util.spec_from_loader(fullname, _Source(_DECORATORS))


class _Alias(importlib.abc.Loader):
    """`import uwsgi` gives the one uisge.compat.uwsgi module object (its state is shared)."""

    def __init__(self, module) -> None:
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module) -> None:
        pass


class _Source(importlib.abc.Loader):
    """Runs source read before privileges were dropped (the package may be unreadable to `uid` then)."""

    def __init__(self, source: tuple[str, str]) -> None:
        self.path, self.text = source

    def exec_module(self, module) -> None:
        module.__file__ = self.path
        exec(compile(self.text, self.path, "exec"), module.__dict__)  # noqa: S102 - our own module's source


def _read(name: str) -> tuple[str, str]:
    origin = importlib.util.find_spec(name).origin
    with open(origin, encoding="utf-8") as fh:
        return origin, fh.read()


_DECORATORS = _read(NAMES["uwsgidecorators"])


def install() -> None:
    from uisge.compat import uwsgi

    uwsgi._refresh()
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
