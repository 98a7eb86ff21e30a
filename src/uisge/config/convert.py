"""Value converters with uWSGI's meaning: booleans, integers, addresses, modes, mappings.

Each converter takes the raw text of one occurrence and returns a Python value or raises
`ValueError` with a message a person can act on (the caller adds the option name and origin).
No I/O here: a path is text, an address is parsed, nothing is opened or resolved.
"""

from __future__ import annotations

import re
import signal as _signal
from dataclasses import dataclass
from typing import Any, Callable

FALSE_WORDS = ("false", "off", "no")


def to_flag(text: str | None) -> bool:
    """uWSGI's `uwsgi_opt_true`: absent means true; false only for false/off/no (any case) or exactly 0."""
    if text is None:
        return True
    value = text.strip()
    if value.lower() in FALSE_WORDS or value == "0":
        return False
    return True


_INT_RE = re.compile(r"[0-9]+")


def to_int(text: str) -> int:
    value = text.strip()
    if not _INT_RE.fullmatch(value):
        if value.startswith("-") and _INT_RE.fullmatch(value[1:]):
            raise ValueError(f"{value!r} is negative; give a whole number of 0 or more")
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def to_megabytes(text: str) -> int:
    """Megabyte options (`reload-on-rss = 512`) as bytes."""
    return to_int(text) * 1024 * 1024


def to_chmod(text: str | None) -> int:
    """`chmod-socket`: alone or `1` means 666; otherwise exactly three octal digits."""
    if text is None or text.strip() in ("", "1"):
        return 0o666
    value = text.strip()
    if not re.fullmatch(r"[0-7]{3}", value):
        raise ValueError(f"{value!r} is not a mode; give three octal digits such as 660 or 666")
    return int(value, 8)


def to_octal(text: str) -> int:
    value = text.strip()
    if not re.fullmatch(r"0?[0-7]{1,4}", value):
        raise ValueError(f"{value!r} is not an octal mask such as 022")
    return int(value, 8)


def to_str(text: str) -> str:
    return text


def to_keyval(text: str) -> tuple[str, str]:
    """`NAME=VALUE`, split on the first `=` (as uWSGI's `env` does)."""
    if "=" not in text:
        raise ValueError(f"{text!r} has no '='; write NAME=VALUE")
    key, _, value = text.partition("=")
    if not key.strip():
        raise ValueError(f"{text!r} has an empty name before '='")
    return key.strip(), value


def to_map(text: str) -> tuple[str, str]:
    """`static-map MOUNT=DIR`: the mount must be a URL path."""
    key, value = to_keyval(text)
    if not key.startswith("/"):
        raise ValueError(f"mount {key!r} must start with '/', as in /static=/var/static")
    if not value.strip():
        raise ValueError(f"{text!r} names no directory after '='")
    return key, value.strip()


@dataclass(frozen=True)
class Address:
    """A listening address as uWSGI writes them: `host:port`, `:port`, `[::]:port`, a unix path, `@abstract`."""

    text: str
    family: str  # "inet", "inet6" or "unix"
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        return self.text


def to_address(text: str) -> Address:
    value = text.strip()
    if not value:
        raise ValueError("the address is empty; write host:port, :port or a unix socket path")
    if value.startswith("="):
        raise ValueError(f"{value!r} refers to a shared socket, which uisge does not use; write the address itself")
    if value.isdigit():
        raise ValueError(
            f"{value!r} is a number, not an address; write :{value} for port {value} on all interfaces, or a "
            f"path for a unix socket (a timeout is `http-timeout` / `socket-timeout`)"
        )
    if ":" not in value:
        return Address(value, "unix", path=value)
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            raise ValueError(f"{value!r} is not [IPv6]:port")
        return Address(value, "inet6", host=host, port=_port(port, value))
    host, _, port = value.rpartition(":")
    if host.count(":"):
        raise ValueError(f"{value!r}: write IPv6 addresses in brackets, as [{host}]:{port}")
    if host in ("", "*"):
        host = "0.0.0.0"
    return Address(value, "inet", host=host, port=_port(port, value))


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(f"{whole!r} has port {text!r}; a port is a number from 0 to 65535")
    return int(text)


def to_signal(text: str) -> int:
    value = text.strip().upper()
    if value.isdigit():
        return int(value)
    name = value if value.startswith("SIG") else "SIG" + value
    try:
        return int(getattr(_signal, name))
    except AttributeError:
        raise ValueError(f"{text!r} is not a signal name or number (e.g. SIGTERM or 15)") from None


CONVERTERS: dict[str, Callable[..., Any]] = {
    "flag": to_flag,
    "int": to_int,
    "megabytes": to_megabytes,
    "chmod": to_chmod,
    "octal": to_octal,
    "str": to_str,
    "path": to_str,
    "keyval": to_keyval,
    "map": to_map,
    "address": to_address,
    "signal": to_signal,
    "choice": to_str,
}


def convert(type_: str, text: str | None, choices: tuple[str, ...] = ()) -> Any:
    if type_ == "choice":
        value = (text or "").strip()
        if value not in choices:
            raise ValueError(f"{value!r} is not one of: {', '.join(choices)}")
        return value
    if text is None and type_ not in ("flag", "chmod"):
        raise ValueError("a value is required")
    return CONVERTERS[type_](text)
