"""uWSGI 2.0's config logic, applied to the collected entries in their order (reference: core/config.c).

`if-env = NAME` (or `NAME=VALUE`), `if-not-env`, `if-opt`, `if-not-opt`, `if-exists`, `if-not-exists`,
`if-file`, `if-not-file`, `if-dir`, `if-not-dir`, `if-hostname`, `if-not-hostname`, `if-hostname-match`,
`if-not-hostname-match`, `if-reload`, `if-not-reload`, `if-plugin`, `if-not-plugin` keep the entries up
to the next `endif`/`end-if`/`end` when they hold; `for = a b c`, `for-glob`, `for-times`, `for-readline`
repeat them once per item, up to `endfor`/`end-for`/`end`. Inside a block `%(_)` is the item (for), the
variable's or option's value (if-env, if-opt) or the tested path or name. No nesting (uWSGI refuses it),
and no `else` (uWSGI 2.0 has none: it is just another key). `exit = CODE` ends the configuration there:
the command exits with CODE (1 when empty of a value), before anything runs or prints.

Pure apart from what the conditions read (environment, files, hostname): entries in, entries out.
"""

from __future__ import annotations

import glob
import os
import re
import socket
from dataclasses import dataclass
from typing import Callable, Mapping

from uisge.config.origin import Entry

ENDS = {"end", "endif", "end-if", "endfor", "end-for"}
UNSET = object()  # `if-not-env`/`if-not-opt` of a name that is not set: `%(_)` stays as written (uWSGI)
PLUGINS = ("python",)  # what `if-plugin` finds loaded: uisge is Python's plugin, built in


@dataclass
class Result:
    entries: list[Entry]
    exit_code: int | None = None  # `exit` was reached
    error: str | None = None


def _exists(path: str) -> bool:
    return os.path.exists(path)


def _conditions(environ: Mapping[str, str], hostname: str, reloading: bool,
                exported: Callable[[str], str | None]) -> dict[str, Callable[[str], list[str] | None]]:
    """Each logic key -> a test of its argument: None (the block is skipped) or the values of `%(_)`."""

    def keyed(lookup: Callable[[str], str | None], negate: bool) -> Callable[[str], list[str] | None]:
        def test(arg: str) -> list[str] | None:
            name, eq, wanted = arg.partition("=")
            value = lookup(name)
            hit = value is not None and (not eq or value == wanted)
            if negate:
                return None if hit else [value if value is not None else UNSET]
            return [value] if hit else None
        return test

    def path_test(check: Callable[[str], bool], negate: bool) -> Callable[[str], list[str] | None]:
        return lambda arg: [arg] if check(arg) != negate else None

    def hostname_match(negate: bool) -> Callable[[str], list[str] | None]:
        def test(arg: str) -> list[str] | None:
            try:
                hit = re.search(arg, hostname) is not None
            except re.error:
                hit = False
            return [arg] if hit != negate else None
        return test

    def plugin(negate: bool) -> Callable[[str], list[str] | None]:
        return lambda arg: [arg] if arg.startswith(PLUGINS) != negate else None

    def glob_items(arg: str) -> list[str]:
        return sorted(glob.glob(arg)) or [arg]  # GLOB_NOCHECK: no match gives the pattern itself

    def lines(arg: str) -> list[str] | None:
        try:
            with open(arg) as fh:
                return [line.rstrip("\r\n") for line in fh]
        except OSError:
            return None

    def times(arg: str) -> list[str]:
        n = int(arg) if arg.strip().isdigit() else 0
        return [str(i) for i in range(1, n + 1)]

    return {
        "if-env": keyed(environ.get, False), "ifenv": keyed(environ.get, False),
        "if-not-env": keyed(environ.get, True),
        "if-opt": keyed(exported, False), "if-not-opt": keyed(exported, True),
        "if-exists": path_test(_exists, False), "ifexists": path_test(_exists, False),
        "if-not-exists": path_test(_exists, True),
        "if-file": path_test(os.path.isfile, False), "if-not-file": path_test(os.path.isfile, True),
        "if-dir": path_test(os.path.isdir, False), "ifdir": path_test(os.path.isdir, False),
        "if-directory": path_test(os.path.isdir, False), "if-not-dir": path_test(os.path.isdir, True),
        "if-hostname": path_test(lambda a: a == hostname, False),
        "if-not-hostname": path_test(lambda a: a == hostname, True),
        "if-hostname-match": hostname_match(False), "if-not-hostname-match": hostname_match(True),
        "if-reload": lambda arg: [arg] if reloading else None,
        "if-not-reload": lambda arg: None if reloading else [arg],
        "if-plugin": plugin(False), "ifplugin": plugin(False), "if-not-plugin": plugin(True),
        "for": lambda arg: arg.split(), "for-glob": glob_items, "for-times": times, "for-readline": lines,
    }


LOGIC = frozenset(_conditions({}, "", False, lambda name: None))


def apply(entries: list[Entry], environ: Mapping[str, str], hostname: str | None = None,
          reloading: bool = False) -> Result:
    """The entries as uWSGI's config logic leaves them, in order."""
    hostname = socket.gethostname() if hostname is None else hostname
    out: list[Entry] = []
    exported_so_far: list[Entry] = []  # uWSGI's exported options: every entry read so far, logic keys included,
    # except those a false condition skipped

    def exported(name: str) -> str | None:  # the first value given so far (uWSGI's uwsgi_get_exported_opt)
        for entry in exported_so_far:
            if entry.key == name:
                return entry.value if entry.value is not None else ""
        return None

    tests = _conditions(environ, hostname, reloading, exported)
    block: tuple[str, str, Entry] | None = None  # (logic key, its argument, where)
    for entry in entries:
        key = entry.key
        if key in ENDS:
            block = None
            exported_so_far.append(entry)
            continue
        if block is not None:
            logic_key, arg, opened = block
            if key in LOGIC:
                return Result(out, error=f"recursive logic in options is not supported: `{key}` inside the "
                                         f"`{logic_key}` block opened at {opened.origin} (close it first with "
                                         f"`endif`/`endfor`)")
            items = tests[logic_key](arg)
            for item in items or ():
                value = entry.value
                if value is not None and item is not UNSET:
                    value = value.replace("%(_)", item)
                out.append(Entry(key, value, entry.origin, entry.from_file))
                exported_so_far.append(out[-1])
                if key == "exit":
                    return Result(out, exit_code=_exit_code(value))
            continue
        exported_so_far.append(entry)
        if key in LOGIC:
            block = (key, entry.value or "", entry)
            continue
        out.append(entry)
        if key == "exit":
            return Result(out, exit_code=_exit_code(entry.value))
    return Result(out)


def _exit_code(value: str | None) -> int:
    """uWSGI: `exit` alone is 1; otherwise atoi() of the value."""
    if value is None:
        return 1
    digits = re.match(r"\s*-?\d+", value)
    return int(digits.group()) if digits else 0
