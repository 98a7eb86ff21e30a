"""The ini reader: sections, comment lines, inline comments, `key = value` lines, with line numbers.

Pure text in, entries out (the loader reads the file and substitutes magic variables first).
Differs from uWSGI 2.0 on purpose in one way: a `#` that follows whitespace starts an inline comment
(`uid=www-data # Ubuntu user` means `www-data`). It must not expand variables or convert values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class IniLine:
    key: str
    value: str
    lineno: int
    comment: str = ""  # the inline comment that was stripped, if any


def strip_inline_comment(value: str) -> tuple[str, str]:
    """Cut `value` at the first `#` that follows a space or tab; return (value, comment)."""
    for i in range(1, len(value)):
        if value[i] == "#" and value[i - 1] in " \t":
            return value[:i].rstrip(" \t"), value[i:]
    return value, ""


def parse_ini(text: str, section: str = "uwsgi") -> tuple[list[IniLine], list[str]]:
    """Return the lines of every `[section]` block (uWSGI reads all of them) and the sections seen."""
    lines: list[IniLine] = []
    sections: list[str] = []
    current: str | None = None
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(" \t\r")
        if not line:
            continue
        if line[0] == "[":
            name = line[1:]
            if name.endswith("]"):
                name = name[:-1]
            current = name.strip()
            sections.append(current)
            continue
        if line[0] in "#;":
            continue
        if current != section:
            continue
        key, sep, rest = line.partition("=")
        if sep:
            rest, comment = strip_inline_comment(rest)
            value = rest.strip(" \t")
        else:
            key, comment = strip_inline_comment(key)
            value = ""
        lines.append(IniLine(key.strip(" \t"), value, lineno, comment))
    return lines, sections
