"""Fold config sources into one frozen `Options`: expand placeholders, convert, apply in order.

uWSGI 2.0 semantics: `$(ENV)`, then `@(file)`, then `%(name)` over every value; options applied in
the order they were given (scalars: last wins; lists accumulate); unknown keys kept as variables.
Our additions: warnings for unknown keys never used as `%(name)`, with a did-you-mean; `strict`
turns warnings into errors. No sockets, no chdir, no app import: building the config has no effects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Mapping

from uisge.config import expand, logic
from uisge.config.convert import convert
from uisge.config.origin import DEFAULT, Entry, Origin
from uisge.config.registry import REGISTRY, Option, Status
from uisge.config.sources import Collected, Message, did_you_mean, from_argv, from_environ, suggest


class ConfigError(Exception):
    """The configuration cannot be used; `messages` says every reason, each with its origin."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        super().__init__("\n".join(str(m) for m in messages))


@dataclass
class Variable:
    name: str
    value: str
    origin: Origin
    used: bool


@dataclass(frozen=True)
class Options:
    """The effective configuration. Attribute access by python name: `opts.http_socket`, `opts.processes`."""

    values: Mapping[str, Any]
    origins: Mapping[str, tuple[Origin, ...]]
    entries: tuple[Entry, ...]
    variables: tuple[Variable, ...]
    messages: tuple[Message, ...]
    files: tuple[str, ...]
    actions: tuple[tuple[Option, Any, Origin], ...] = ()
    exit_code: int | None = None  # config logic reached `exit = CODE` (config/logic.py)

    def __getattr__(self, attr: str) -> Any:
        try:
            return self.values[attr.replace("_", "-")]
        except KeyError:
            raise AttributeError(attr) from None

    def get(self, name: str) -> Any:
        return self.values[REGISTRY[name].name]

    def is_set(self, name: str) -> bool:
        return self.origins.get(REGISTRY[name].name, (DEFAULT,))[0] is not DEFAULT

    def origin(self, name: str) -> str:
        origins = self.origins.get(REGISTRY[name].name, (DEFAULT,))
        return ", ".join(str(o) for o in origins)

    def warnings(self) -> list[Message]:
        return [m for m in self.messages if m.level == "warning"]

    def notices(self) -> list[Message]:
        return [m for m in self.messages if m.level == "notice"]

    def set_options(self) -> Iterator[Option]:
        for option in REGISTRY.options:
            if self.is_set(option.name):
                yield option


@dataclass
class _State:
    col: Collected
    environ: Mapping[str, str]
    expanded: dict[int, str | None] = field(default_factory=dict)
    in_progress: set[int] = field(default_factory=set)
    used: set[str] = field(default_factory=set)


def load(args: list[str], environ: Mapping[str, str] | None = None, first_index: int = 1) -> Options:
    """Build Options from a command line (without the program name) and an environment."""
    environ = os.environ if environ is None else environ
    col = Collected()
    from_environ(col, environ)
    from_argv(col, args, first_index)
    result = logic.apply(col.entries, environ, reloading=bool(environ.get("UISGE_REEXEC")))
    if result.error:
        col.error(result.error)
    col.entries = result.entries
    state = _State(col, environ)
    for index in range(len(col.entries)):
        _expanded(state, index)
    opts = _apply(state)
    if result.exit_code is not None:
        opts = replace(opts, exit_code=result.exit_code)
    return opts


def _first_index(state: _State, name: str) -> int | None:
    entries = state.col.entries
    for i, entry in enumerate(entries):
        if entry.key == name:
            return i
    option = REGISTRY.get(name)
    if option is not None:
        for i, entry in enumerate(entries):
            if REGISTRY.get(entry.key) is option:
                return i
    return None


def _expanded(state: _State, index: int) -> str | None:
    if index in state.expanded:
        return state.expanded[index]
    entry = state.col.entries[index]
    if entry.value is None:
        state.expanded[index] = None
        return None
    state.in_progress.add(index)
    missing_env: list[str] = []
    file_errors: list[str] = []
    unknown: list[str] = []
    text = expand.expand_env(entry.value, state.environ, missing_env)
    text = expand.expand_files(text, os.getcwd(), file_errors)

    def lookup(name: str) -> str | None:
        found = _first_index(state, name)
        if found is None:
            return None
        state.used.add(state.col.entries[found].key)
        if found in state.in_progress:
            state.col.error(f"`%({name})` refers to itself (a loop through `{state.col.entries[found].key}`)",
                            entry.origin)
            return None
        return _expanded(state, found) or ""

    text = expand.expand_placeholders(text, lookup, unknown)
    for name in missing_env:
        state.col.warn(f"`$({name})` in `{entry.key}`: environment variable {name} is not set, so the text stays "
                       f"as written", entry.origin)
    for message in file_errors:
        state.col.error(f"in `{entry.key}`: {message}", entry.origin)
    option = REGISTRY.get(entry.key)
    if option is None or option.name != "log-format":  # log-format's %(vars) are request variables
        for name in unknown:
            state.col.warn(f"`%({name})` in `{entry.key}` names no option or variable, so it stays as written"
                           f"{did_you_mean(name)}", entry.origin)
    state.in_progress.discard(index)
    state.expanded[index] = text
    return text


def _apply(state: _State) -> Options:
    col = state.col
    values: dict[str, Any] = {o.name: o.default for o in REGISTRY.options}
    origins: dict[str, list[Origin]] = {}
    lists: dict[str, list[Any]] = {}
    said: set[str] = set()
    variables: dict[str, Variable] = {}
    expanded_entries: list[Entry] = []
    actions: list[tuple[Option, Any, Origin]] = []

    for index, entry in enumerate(col.entries):
        raw = state.expanded.get(index, entry.value)
        expanded_entries.append(Entry(entry.key, raw, entry.origin, entry.from_file))
        option = REGISTRY.get(entry.key)
        if option is None:
            if entry.key not in variables:
                variables[entry.key] = Variable(entry.key, raw or "", entry.origin, False)
            continue
        if option.status is Status.REFUSED:
            col.error(f"`{entry.key}` is not supported by uisge: {option.reason}", entry.origin)
            continue
        try:
            if option.optional_value and raw is None and option.type not in ("flag", "chmod"):
                value = ""  # `--mule` alone: an idle mule
            else:
                value = convert(option.type, raw, option.extra.get("choices", ()))
        except ValueError as exc:
            col.error(f"`{entry.key} = {raw}`: {exc}", entry.origin)
            continue
        if option.status in (Status.IGNORED, Status.PLANNED) and option.name not in said:
            said.add(option.name)
            col.messages.append(Message("notice", f"`{entry.key}` is {option.status_text()}", entry.origin))
        if option.action:
            actions.append((option, value, entry.origin))
        if option.repeat:
            lists.setdefault(option.name, []).append(value)
            origins.setdefault(option.name, []).append(entry.origin)
        else:
            previous = origins.get(option.name)
            if previous and previous[0].kind == "file" and entry.origin.kind == "file" and \
                    previous[0].where.split(":")[0] == entry.origin.where.split(":")[0] and option.name != "master":
                col.warn(f"`{option.name}` is set again (first at {previous[0]}); the last value wins",
                         entry.origin)
            values[option.name] = value
            origins[option.name] = [entry.origin]
        if option.implies_master and value and not values["master"]:
            values["master"] = True
            origins["master"] = [Origin("set", f"implied by `{entry.key}` ({entry.origin})")]

    for name, items in lists.items():
        values[name] = tuple(items)

    for var in variables.values():
        var.used = var.name in state.used
        if not var.used:
            hint = did_you_mean(var.name)
            if hint:
                text = (f"`{var.name}` is not an option.{hint} (It is kept as a custom variable, but nothing uses "
                        f"it as `%({var.name})`.)")
            else:
                text = (f"`{var.name}` is not an option and nothing uses it as `%({var.name})`; remove it if it is "
                        f"a typo, or declare a variable with `set-placeholder = {var.name}=...`")
            col.warn(text, var.origin)

    if col.strict:
        for message in col.messages:
            if message.level == "warning":
                message.level = "error"
                message.text += " [strict]"

    errors = [m for m in col.messages if m.level == "error"]
    if errors:
        raise ConfigError(errors + [m for m in col.messages if m.level == "warning"])
    return Options(
        values=values,
        origins={k: tuple(v) for k, v in origins.items()},
        entries=tuple(expanded_entries),
        variables=tuple(variables.values()),
        messages=tuple(col.messages),
        files=tuple(col.files),
        actions=tuple(actions),
    )


__all__ = ["ConfigError", "Options", "Variable", "load", "suggest"]
