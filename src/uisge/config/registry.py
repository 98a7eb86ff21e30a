"""The option registry: one declaration per uWSGI option, from which everything else is derived.

The CLI parser, ini/yaml/json/env key lookup, `--help`, `docs/options.md` and `uisge check` all read
this table. Topic modules (`options_*.py`) declare options; this module holds the shape of an option
and the lookups. It must not parse values or touch files: converters live in `convert.py`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.Enum):
    """What uisge does with an option."""

    SUPPORTED = "supported"
    PLANNED = "planned"  # accepted; does nothing yet; a named issue implements it
    IGNORED = "ignored"  # accepted and ignored on purpose; reason said once at start-up
    REFUSED = "refused"  # configuration error; reason says what to do instead


@dataclass(frozen=True)
class Option:
    name: str
    type: str
    help: str
    topic: str
    default: Any = None
    aliases: tuple[str, ...] = ()
    short: str | None = None
    repeat: bool = False
    status: Status = Status.SUPPORTED
    reason: str = ""
    issue: int | None = None  # the issue that implements a PLANNED option
    immediate: bool = False  # applied while the command line is read (ini, include, set, strict)
    optional_value: bool = False  # `--chmod-socket` alone means 666
    action: bool = False  # a one-shot command (stop, reload, connect-and-read, version)
    implies_master: bool = False
    metavar: str = ""
    deviation: str = ""  # how and why uisge differs from uWSGI 2.0 here (goes to docs/deviations.md)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def attr(self) -> str:
        return self.name.replace("-", "_")

    @property
    def takes_value(self) -> bool:
        return self.type != "flag"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def status_text(self) -> str:
        if self.status is Status.SUPPORTED:
            return "supported"
        if self.status is Status.PLANNED:
            return f"accepted, not implemented yet (issue #{self.issue})" if self.issue else "accepted, not implemented yet"
        if self.status is Status.IGNORED:
            return f"accepted and ignored: {self.reason}"
        return f"refused: {self.reason}"


TOPICS: dict[str, str] = {
    "config": "Configuration files and variables",
    "sockets": "Sockets and protocols",
    "http": "HTTP",
    "app": "Application loading",
    "process": "Processes, signals and reloads",
    "health": "Worker health and recycling",
    "logging": "Logging",
    "static": "Static files",
    "stats": "Stats and monitoring",
    "tasks": "Background and scheduled tasks",
    "actions": "One-shot commands",
    "misc": "Other uWSGI options",
}


class Registry:
    """Lookups over a fixed tuple of options."""

    def __init__(self, options: tuple[Option, ...]) -> None:
        self.options = options
        self._by_name: dict[str, Option] = {}
        self._by_short: dict[str, Option] = {}
        for option in options:
            if option.topic not in TOPICS:
                raise ValueError(f"option {option.name}: unknown topic {option.topic!r}")
            for name in option.names:
                if name in self._by_name:
                    raise ValueError(f"option name {name!r} declared twice")
                self._by_name[name] = option
            if option.short:
                if option.short in self._by_short:
                    raise ValueError(f"short option -{option.short} declared twice")
                self._by_short[option.short] = option

    def get(self, name: str) -> Option | None:
        """Exact lookup of a name or alias, as uWSGI matches ini keys."""
        return self._by_name.get(name)

    def __getitem__(self, name: str) -> Option:
        return self._by_name[name]

    def short(self, letter: str) -> Option | None:
        return self._by_short.get(letter)

    def all_names(self) -> list[str]:
        return list(self._by_name)

    def prefix_matches(self, prefix: str) -> list[str]:
        """Names (and aliases) that start with `prefix`, as getopt_long abbreviations do."""
        return sorted(name for name in self._by_name if name.startswith(prefix))


def _build() -> Registry:
    from uisge.config import (
        options_actions,
        options_app,
        options_config,
        options_health,
        options_http,
        options_logging,
        options_misc,
        options_process,
        options_sockets,
        options_static,
        options_stats,
        options_tasks,
    )

    modules = (
        options_config,
        options_sockets,
        options_http,
        options_app,
        options_process,
        options_health,
        options_logging,
        options_static,
        options_stats,
        options_tasks,
        options_actions,
        options_misc,
    )
    return Registry(tuple(option for module in modules for option in module.OPTIONS))


REGISTRY = _build()
