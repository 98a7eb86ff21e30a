"""Where a configuration value came from: a file line, an argv position, an env var, a default.

Only a value type; every message about a value names its Origin.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    kind: str  # "file", "argv", "env", "set", "default"
    where: str  # "uwsgi.ini:12", "argv[3]", "env UWSGI_HTTP", "default"

    def __str__(self) -> str:
        return self.where


DEFAULT = Origin("default", "default")


@dataclass
class Entry:
    """One occurrence of `key = value` from any source, before conversion."""

    key: str
    value: str | None  # None: a flag given without a value on the command line
    origin: Origin
    from_file: bool = False
