"""uWSGI's magic variables (`%d`, `%n`, `%k`, ...), substituted in config file text.

Pure: the caller gives the facts (paths, hostname, cpu count); this module only rewrites text.
Unknown `%x` become empty, as in uWSGI, and are reported back so the loader can warn.
"""

from __future__ import annotations

import os
import sys
import socket
import time
from dataclasses import dataclass, field


@dataclass
class MagicContext:
    """Facts for one config file, plus the first file loaded (for the upper-case variants)."""

    path: str  # as given (%o)
    section: str = ""
    first: "MagicContext | None" = None
    facts: dict[str, str] = field(default_factory=dict)


def file_vars(path: str, section: str) -> dict[str, str]:
    absolute = os.path.join(os.getcwd(), path) if not os.path.isabs(path) else path
    absolute = os.path.normpath(absolute)
    directory = os.path.dirname(absolute)
    name = os.path.basename(absolute)
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    out = {
        "o": path,
        "p": absolute,
        "s": name,
        "d": directory.rstrip("/") + "/",
        "c": os.path.basename(directory),
        "e": ext,
        "n": stem,
        "x": section,
    }
    try:
        st = os.stat(absolute)
        out["i"] = str(st.st_ino)
    except OSError:
        out["i"] = ""
    h = 5381
    for ch in absolute.encode():
        h = ((h * 33) ^ ch) & 0xFFFFFFFF
    out["j"] = format(h, "x")
    parts = [p for p in directory.split("/") if p]
    for i in range(10):
        out[str(i)] = parts[i] if i < len(parts) else ""
    return out


def process_vars(version: str) -> dict[str, str]:
    import grp
    import pwd

    uid, gid = os.getuid(), os.getgid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    now = time.time()
    return {
        "v": os.getcwd(),
        "h": socket.gethostname(),
        "t": str(int(now)),
        "T": str(int(now * 1_000_000)),
        "V": version,
        "k": str(os.cpu_count() or 1),
        "[": "\x1b",
        "u": str(uid),
        "U": user,
        "g": str(gid),
        "G": group,
        "b": os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else "",
    }


def substitute(text: str, table: dict[str, str]) -> tuple[str, list[str]]:
    """Replace `%X` using `table`; `%%` is `%`, `%(` stays. Returns the text and the unknown letters met."""
    out: list[str] = []
    unknown: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "%" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "%":
            out.append("%")
        elif nxt == "(":
            out.append("%(")
        elif nxt in table:
            out.append(table[nxt])
        elif nxt in " \t\r\n":
            out.append("%" + nxt)  # a lone percent sign, as in "100% sure"
        else:
            unknown.append(nxt)
        i += 2
    return "".join(out), unknown


def table_for(path: str, section: str, first: tuple[str, str] | None, version: str) -> dict[str, str]:
    table = process_vars(version)
    mine = file_vars(path, section)
    table.update(mine)
    first_vars = file_vars(*first) if first else mine
    for letter in "odsceinxpj":
        table[letter.upper()] = first_vars[letter]
    return table
