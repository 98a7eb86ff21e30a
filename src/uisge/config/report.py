"""Text renderings of the configuration: `uisge check`, `--show-config`, `--help` and docs/options.md.

Reads Options and the registry; writes nothing itself (the caller prints or saves the text).
"""

from __future__ import annotations

from typing import Any

from uisge import __version__
from uisge.config.convert import Address
from uisge.config.load import Options
from uisge.config.registry import REGISTRY, TOPICS, Option, Status


def show_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Address):
        return value.text
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return f"{value[0]}={value[1]}"
    if value is None:
        return "-"
    return str(value)


def _display(option: Option, value: Any) -> str:
    if option.type == "chmod" and isinstance(value, int):
        return format(value, "o")
    if option.type == "megabytes" and isinstance(value, int):
        return f"{value // (1024 * 1024)} MB"
    return show_value(value)


def check_text(opts: Options, show_all: bool = False) -> str:
    lines: list[str] = []
    files = ", ".join(opts.files) or "(no config file)"
    lines.append(f"uisge {__version__} check: {files}")
    lines.append("")
    rows: list[tuple[str, str, str]] = []
    for option in REGISTRY.options:
        if option.action or option.name in ("ini", "yaml", "json", "include", "inherit", "set", "set-placeholder"):
            continue
        if not opts.is_set(option.name) and not show_all:
            continue
        value = opts.values[option.name]
        origins = opts.origins.get(option.name)
        if option.repeat:
            if not value:
                rows.append((option.name, "(none)", "default"))
            for item, origin in zip(value, origins or ()):
                rows.append((option.name, _display(option, item), str(origin)))
        else:
            rows.append((option.name, _display(option, value), str(origins[0]) if origins else "default"))
    width = max([len(r[0]) for r in rows] + [6])
    vwidth = min(max([len(r[1]) for r in rows] + [5]), 48)
    lines.append(f"  {'option':<{width}}  {'value':<{vwidth}}  from")
    for name, value, origin in rows:
        lines.append(f"  {name:<{width}}  {value:<{vwidth}}  {origin}")
    if not show_all:
        lines.append(f"  (options left at their defaults are not shown; `uisge check --all ...` lists them)")
    used = [v for v in opts.variables if v.used]
    if used:
        lines.append("")
        lines.append("variables:")
        vw = max(len(v.name) for v in used)
        for v in used:
            lines.append(f"  {v.name:<{vw}}  {v.value:<{vwidth}}  {v.origin}")
    notices = opts.notices()
    if notices:
        lines.append("")
        lines.append("notices:")
        lines.extend(f"  {m}" for m in notices)
    from uisge.errors import UisgeError
    from uisge.tasks.instance import validate

    try:
        validate(opts)  # cron, timer, daemon and cache specs: parsed only, nothing started
    except UisgeError as exc:
        lines.append("")
        lines.append(f"error: {exc}")
    warnings = opts.warnings()
    lines.append("")
    if warnings:
        lines.append(f"warnings ({len(warnings)}):")
        lines.extend(f"  {m}" for m in warnings)
    else:
        lines.append("no warnings")
    return "\n".join(lines) + "\n"


def show_config_text(opts: Options) -> str:
    """The stored option list as ini, like uWSGI's `--show-config`."""
    lines = [";uWSGI instance configuration", "[uwsgi]"]
    for entry in opts.entries:
        value = "true" if entry.value is None else entry.value
        lines.append(f"{entry.key} = {value}")
    lines.append(";end of configuration")
    return "\n".join(lines) + "\n"


def _default_text(option: Option) -> str:
    if option.type == "flag":
        return "on" if option.default else "off"
    if option.repeat or option.default is None or option.default == "":
        return ""
    return _display(option, option.default)


def _flags(option: Option) -> str:
    names = [f"--{n}" for n in option.names]
    if option.short:
        names.insert(0, f"-{option.short}")
    return ", ".join(names)


def help_text() -> str:
    lines = [
        f"uisge {__version__}: a uWSGI-compatible application server for Python WSGI apps",
        "",
        "usage: uisge [CONFIG.ini ...] [--option value ...]",
        "       uisge check [CONFIG.ini ...] [--option value ...]   show the effective configuration",
        "",
        "Every option can also be written in an ini file (`option = value` under [uwsgi]) or as an",
        "environment variable (UWSGI_OPTION_NAME=value). Full reference: docs/options.md.",
    ]
    for topic, title in TOPICS.items():
        lines.append("")
        lines.append(f"{title}:")
        for option in (o for o in REGISTRY.options if o.topic == topic):
            if option.status is Status.REFUSED:
                continue
            flags = _flags(option)
            if option.takes_value:
                flags += f" {option.metavar or option.type.upper()}"
            lines.append(f"  {flags}")
            extra = []
            if _default_text(option):
                extra.append(f"default {_default_text(option)}")
            if option.status is not Status.SUPPORTED:
                extra.append(option.status_text())
            tail = f" ({'; '.join(extra)})" if extra else ""
            lines.append(f"      {option.help}{tail}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def options_markdown() -> str:
    """docs/options.md, generated from the registry (a test fails when the file is stale)."""
    lines = [
        "# Option reference",
        "",
        "<!-- generated by `python -m uisge.config.report > docs/options.md` from the option registry; "
        "do not edit by hand -->",
        "",
        "Every option can be given as `--name value` on the command line, as `name = value` in the `[uwsgi]`",
        "section of an ini file (or in YAML/JSON), or as an environment variable `UWSGI_NAME` (upper case,",
        "`-` written `_`). Options marked *repeat* may be given several times.",
        "",
        "Status: **supported**; **planned** (accepted, does nothing yet; the issue named implements it);",
        "**ignored** (accepted on purpose, the reason is said once at start-up); **refused** (a configuration",
        "error, with what to do instead).",
    ]
    for topic, title in TOPICS.items():
        lines += ["", f"## {title}", "", "| option | aliases | value | default | status | description |",
                  "|---|---|---|---|---|---|"]
        for option in (o for o in REGISTRY.options if o.topic == topic):
            aliases = ", ".join(f"`{a}`" for a in option.aliases)
            if option.short:
                aliases = ", ".join(x for x in (f"`-{option.short}`", aliases) if x)
            kind = option.type + (", repeat" if option.repeat else "")
            if option.status is Status.SUPPORTED:
                status = "supported"
            elif option.status is Status.PLANNED:
                status = f"planned (#{option.issue})"
            else:
                status = f"{option.status.value}: {option.reason}"
            default = _default_text(option)
            lines.append(f"| `{option.name}` | {aliases} | {kind} | {_md(default)} | {_md(status)} | "
                         f"{_md(option.help)} |")
    return "\n".join(lines) + "\n"


def deviations_markdown() -> str:
    """docs/deviations.md: every deliberate difference from uWSGI 2.0, in one table."""
    from uisge.config.deviations import ROWS

    lines = [
        "# Where uisge differs from uWSGI 2.0 on purpose",
        "",
        "<!-- generated by `python -m uisge.config.report deviations > docs/deviations.md`; do not edit by hand -->",
        "",
        "uisge reads uWSGI 2.0.31 configurations and behaves like it, except in these places, where uWSGI's",
        "behaviour hurts users. Each row says what uWSGI does and what uisge does instead.",
        "",
        "| what | uWSGI 2.0 | uisge |",
        "|---|---|---|",
    ]
    for what, theirs, ours in ROWS:
        lines.append(f"| {_md(what)} | {_md(theirs)} | {_md(ours)} |")
    for option in REGISTRY.options:
        if option.deviation:
            lines.append(f"| `{option.name}` | see the uWSGI default | {_md(option.deviation)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(deviations_markdown() if sys.argv[1:] == ["deviations"] else options_markdown(), end="")
