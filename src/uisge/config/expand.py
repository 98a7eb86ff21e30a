"""Placeholders in option values: `$(ENV)`, `@(file)` and `%(name)`, with uWSGI 2.0 semantics.

`%(name)` is the first stored value of any key (options and custom variables alike), itself expanded;
`%(a b)` concatenates, `%(a + 5)` does integer math, unknown names stay literally. The caller supplies
lookups; this module reads a file only for `@(path)` and never touches options.
"""

from __future__ import annotations

import os
import re
from typing import Callable

_OPS = ("+", "-", "*", "/")


class ExpandError(ValueError):
    pass


def _scan(text: str, marker: str, replace: Callable[[str], str | None]) -> str:
    """Replace every `marker(inner)` in text, tracking nested parentheses. None keeps the original."""
    out: list[str] = []
    i = 0
    while True:
        j = text.find(marker + "(", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        depth, k = 1, j + 2
        while k < len(text) and depth:
            if text[k] == "(":
                depth += 1
            elif text[k] == ")":
                depth -= 1
            k += 1
        if depth:
            out.append(text[i:])
            return "".join(out)
        inner = text[j + 2 : k - 1]
        new = replace(inner)
        out.append(text[i:j])
        out.append(text[j:k] if new is None else new)
        i = k


def expand_env(text: str, environ: dict[str, str], missing: list[str]) -> str:
    def repl(name: str) -> str | None:
        if name in environ:
            return environ[name]
        missing.append(name)
        return None

    return _scan(text, "$", repl)


def expand_files(text: str, base_dir: str, errors: list[str]) -> str:
    def repl(path: str) -> str | None:
        full = path if os.path.isabs(path) else os.path.join(base_dir, path)
        try:
            with open(full, encoding="utf-8") as fh:
                content = fh.read()
        except OSError as exc:
            errors.append(f"@({path}) cannot be read: {exc.strerror or exc}")
            return None
        return content[:-1] if content.endswith("\n") else content

    return _scan(text, "@", repl)


def _as_int(text: str) -> int | None:
    return int(text) if re.fullmatch(r"-?[0-9]+", text.strip()) else None


def evaluate(inner: str, lookup: Callable[[str], str | None]) -> str | None:
    """Value of the inside of `%( ... )`, or None when a name is unknown (the caller keeps it literal)."""
    tokens = inner.split()
    if not tokens:
        return None
    if len(tokens) == 1:
        tok = tokens[0]
        for suffix, delta in (("++", 1), ("--", -1)):
            if tok.endswith(suffix) and len(tok) > 2:
                base = lookup(tok[:-2])
                number = _as_int(base) if base is not None else None
                return None if number is None else str(number + delta)
        return lookup(tok)
    if any(t in _OPS for t in tokens):
        values: list[int] = []
        ops: list[str] = []
        for n, tok in enumerate(tokens):
            if n % 2:
                if tok not in _OPS:
                    return None
                ops.append(tok)
                continue
            raw = lookup(tok)
            if raw is None:
                raw = tok
            number = _as_int(raw)
            if number is None:
                return None
            values.append(number)
        result = values[0]
        for op, number in zip(ops, values[1:]):
            if op == "+":
                result += number
            elif op == "-":
                result -= number
            elif op == "*":
                result *= number
            else:
                result = 0 if number == 0 else int(result / number)
        return str(result)
    parts = [lookup(t) for t in tokens]
    if any(p is None for p in parts):
        return None
    return "".join(p for p in parts if p is not None)


def expand_placeholders(text: str, lookup: Callable[[str], str | None], unknown: list[str]) -> str:
    def repl(inner: str) -> str | None:
        value = evaluate(inner, lookup)
        if value is None:
            unknown.append(inner)
        return value

    return _scan(text, "%", repl)
