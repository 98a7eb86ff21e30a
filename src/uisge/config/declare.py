"""Small constructors used by the `options_*.py` topic modules to declare options tersely.

Only builds `Option` values; no lookups, no parsing.
"""

from __future__ import annotations

from typing import Any

from uisge.config.registry import Option, Status


def topic(name: str):
    """Return `opt(...)` bound to one topic."""

    def opt(name_: str, type_: str, help_: str, **kw: Any) -> Option:
        aliases = kw.pop("aliases", ())
        if isinstance(aliases, str):
            aliases = (aliases,)
        if type_ == "flag" and "default" not in kw:
            kw["default"] = False
        if kw.get("repeat") and "default" not in kw:
            kw["default"] = ()
        return Option(name=name_, type=type_, help=help_, topic=name, aliases=tuple(aliases), **kw)

    return opt


def planned(issue: int) -> dict[str, Any]:
    return {"status": Status.PLANNED, "issue": issue}


def ignored(reason: str) -> dict[str, Any]:
    return {"status": Status.IGNORED, "reason": reason}


def refused(reason: str) -> dict[str, Any]:
    return {"status": Status.REFUSED, "reason": reason}
