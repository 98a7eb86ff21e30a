"""Config sources, read in uWSGI's order into one list of entries: UWSGI_* env, then argv, with
`--ini`/`--yaml`/`--json`/`include` files read in place where they appear.

It turns text into `Entry` values with origins and records messages; it must not convert values,
expand `%(name)` or apply options (that is `load.py`). Reading config files is its only I/O.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from typing import Mapping

from uisge import __version__
from uisge.config import ini, magic
from uisge.config.origin import Entry, Origin
from uisge.config.registry import REGISTRY, Option, Status

CONFIG_EXTENSIONS = {".ini": "ini", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".js": "json", ".xml": "xml"}
FILE_OPTIONS = {"ini": "ini", "yaml": "yaml", "yml": "yaml", "json": "json", "js": "json", "xml": "xml",
                "include": None, "inherit": None}
ENV_EXCLUDED = {
    "UWSGI_RELOADS", "UWSGI_VASSALS_DIR", "UWSGI_EMPEROR_FD", "UWSGI_BROODLORD_NUM", "UWSGI_EMPEROR_FD_CONFIG",
    "UWSGI_EMPEROR_PROXY", "UWSGI_JAIL_PID", "UWSGI_ORIGINAL_PROC_NAME", "UWSGI_PLUGINS",
}
TYPOGRAPHIC_DASHES = {"\u2013": "EN DASH", "\u2014": "EM DASH", "\u2212": "MINUS SIGN", "\u2010": "HYPHEN",
                      "\u2011": "NON-BREAKING HYPHEN", "\u2012": "FIGURE DASH", "\u2015": "HORIZONTAL BAR",
                      "\ufe63": "SMALL HYPHEN-MINUS", "\uff0d": "FULLWIDTH HYPHEN-MINUS"}
MAX_DEPTH = 16


@dataclass
class Message:
    level: str  # "error", "warning" or "notice"
    text: str
    origin: Origin | None = None

    def __str__(self) -> str:
        return f"{self.origin}: {self.text}" if self.origin else self.text


@dataclass
class Collected:
    """Everything the sources produced, in order."""

    entries: list[Entry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    strict: bool = False
    first_file: tuple[str, str] | None = None
    last_file: str | None = None
    actions: list[tuple[Option, str | None, Origin]] = field(default_factory=list)

    def error(self, text: str, origin: Origin | None = None) -> None:
        self.messages.append(Message("error", text, origin))

    def warn(self, text: str, origin: Origin | None = None) -> None:
        self.messages.append(Message("warning", text, origin))


def suggest(word: str, candidates: list[str] | None = None) -> list[str]:
    pool = candidates if candidates is not None else [
        n for n in REGISTRY.all_names() if REGISTRY[n].status is not Status.REFUSED
    ]
    found = difflib.get_close_matches(word, pool, n=3, cutoff=0.6)
    if not found:
        found = [n for n in pool if n.startswith(word)][:3]
    return found


def did_you_mean(word: str) -> str:
    found = suggest(word)
    if not found:
        return ""
    return " Did you mean " + " or ".join(f"`{f}`" for f in found) + "?"


# ---------------------------------------------------------------- files


def split_section(spec: str) -> tuple[str, str | None]:
    """`file.ini:name` → ("file.ini", "name"); the last `:` after the last `/` separates them."""
    slash = spec.rfind("/")
    colon = spec.rfind(":")
    if colon > slash:
        return spec[:colon], spec[colon + 1 :]
    return spec, None


def kind_of(path: str) -> str | None:
    return CONFIG_EXTENSIONS.get(os.path.splitext(path)[1].lower())


def load_file(col: Collected, spec: str, kind: str | None, requested_by: Origin, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        col.error(f"config files include each other more than {MAX_DEPTH} deep (a loop?) at {spec!r}", requested_by)
        return
    path, section = split_section(spec)
    if not path:
        if not col.last_file:
            col.error(f"{spec!r} names a section of the previous file, but no file was loaded before", requested_by)
            return
        path = col.last_file
    kind = kind or kind_of(path)
    if kind is None:
        col.error(f"cannot tell the format of {path!r} from its extension; use --ini, --yaml or --json", requested_by)
        return
    if kind == "xml":
        col.error(f"{path!r}: XML configs are not supported; convert it to ini (one `key = value` per element)",
                  requested_by)
        return
    section_name = section or "uwsgi"
    try:
        with open(path, encoding="utf-8") as fh:
            raw = fh.read()
    except FileNotFoundError:
        col.error(f"config file {path!r} does not exist (current directory: {os.getcwd()})", requested_by)
        return
    except OSError as exc:
        col.error(f"config file {path!r} cannot be read: {exc.strerror or exc}", requested_by)
        return
    except UnicodeDecodeError as exc:
        col.error(f"config file {path!r} is not UTF-8 text: {exc}", requested_by)
        return
    if col.first_file is None:
        col.first_file = (path, section or "")
    col.last_file = path
    col.files.append(path)
    table = magic.table_for(path, section or "", col.first_file, __version__)
    text, unknown = magic.substitute(raw, table)
    name = os.path.basename(path)
    for letter in dict.fromkeys(unknown):
        col.warn(f"`%{letter}` is not a magic variable, so it was replaced by nothing (as uWSGI does); write "
                 f"`%%` for a literal percent sign", Origin("file", name))
    if kind == "ini":
        lines, sections = ini.parse_ini(text, section_name)
        if section_name not in sections:
            found = ", ".join(f"[{s}]" for s in sections) or "none"
            col.error(f"config file {path!r} has no [{section_name}] section (sections found: {found})", requested_by)
            return
        items = [(ln.key, ln.value, Origin("file", f"{name}:{ln.lineno}")) for ln in lines]
    elif kind == "yaml":
        items = _yaml_items(col, text, path, name, section_name, requested_by)
    else:
        items = _json_items(col, text, path, name, section_name, requested_by)
    if items is None:
        return
    for key, value, origin in items:
        add(col, key, value, origin, from_file=True, depth=depth + 1)


def _yaml_items(col, text, path, name, section, requested_by):
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        col.error(f"config file {path!r} is not valid YAML: {exc}", requested_by)
        return None
    if not isinstance(root, yaml.MappingNode):
        col.error(f"config file {path!r} must hold a mapping with a `{section}:` key", requested_by)
        return None
    items = []
    found = False
    for key_node, value_node in root.value:
        if key_node.value != section:
            continue
        found = True
        if not isinstance(value_node, yaml.MappingNode):
            col.error(f"`{section}:` in {path!r} must be a mapping of options", requested_by)
            return None
        for k, v in value_node.value:
            origin = Origin("file", f"{name}:{k.start_mark.line + 1}")
            values = v.value if isinstance(v, yaml.SequenceNode) else [v]
            for item in values:
                if not isinstance(item, yaml.ScalarNode):
                    col.error(f"`{k.value}` must be a scalar or a list of scalars", origin)
                    continue
                items.append((str(k.value), _yaml_scalar(item), origin))
    if not found:
        col.error(f"config file {path!r} has no `{section}:` mapping", requested_by)
        return None
    return items


def _yaml_scalar(node) -> str:
    text = node.value
    if node.tag.endswith(":null") and text in ("", "~", "null", "Null", "NULL"):
        return ""
    return text


def _json_items(col, text, path, name, section, requested_by):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        col.error(f"config file {path!r} is not valid JSON: {exc.msg} at line {exc.lineno}", requested_by)
        return None
    block = data.get(section) if isinstance(data, dict) else None
    if not isinstance(block, dict):
        col.error(f"config file {path!r} has no object named {section!r}", requested_by)
        return None
    items = []
    for key, value in block.items():
        origin = Origin("file", f"{name} key {key!r}")
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                text_value = "1" if item else "0"
            elif item is None:
                text_value = "0"
            elif isinstance(item, (dict, list)):
                col.error(f"`{key}` must be a string, number, boolean or a list of them", origin)
                continue
            else:
                text_value = str(item)
            items.append((key, text_value, origin))
    return items


# ---------------------------------------------------------------- entries


def add(col: Collected, key: str, value: str | None, origin: Origin, *, from_file: bool, depth: int = 0) -> None:
    """Record one `key = value`; config-file options and `set` act at once, as in uWSGI."""
    option = REGISTRY.get(key)
    if option is not None and option.name in FILE_OPTIONS and option.status is not Status.REFUSED:
        if not value:
            col.error(f"`{key}` needs a file name", origin)
            return
        col.entries.append(Entry(key, value, origin, from_file))
        load_file(col, value, FILE_OPTIONS[option.name], origin, depth)
        return
    if option is not None and option.name in ("set", "set-placeholder"):
        if not value or "=" not in value:
            col.error(f"`{key}` takes NAME=VALUE, got {value!r}", origin)
            return
        name, _, val = value.partition("=")
        name = name.strip()
        if option.name == "set-placeholder" and REGISTRY.get(name) is not None:
            col.error(f"`{key}` cannot set {name!r}: it is an option name; use `set` for options", origin)
            return
        col.entries.append(Entry(name, val, Origin("set", f"{origin} (via {key})"), from_file))
        return
    if option is not None and option.name == "strict":
        from uisge.config.convert import to_flag

        col.strict = to_flag(value)
    if option is not None and option.action:
        col.actions.append((option, value, origin))
    col.entries.append(Entry(key, value, origin, from_file))


def from_environ(col: Collected, environ: Mapping[str, str]) -> None:
    for var in sorted(environ):
        if not var.startswith("UWSGI_") or var in ENV_EXCLUDED or len(var) <= 6:
            continue
        key = var[6:].lower().replace("_", "-")
        add(col, key, environ[var], Origin("env", f"env {var}"), from_file=False)


def from_argv(col: Collected, args: list[str], first_index: int = 1) -> None:
    i = 0
    while i < len(args):
        arg = args[i]
        origin = Origin("argv", f"argv[{i + first_index}]")
        dash = next((d for d in TYPOGRAPHIC_DASHES if arg.startswith(d)), None)
        if dash:
            fixed = "--" + arg.lstrip("".join(TYPOGRAPHIC_DASHES) + "-")
            col.error(f"{arg!r} starts with a typographic dash (U+{ord(dash):04X} {TYPOGRAPHIC_DASHES[dash]}), "
                      f"probably copied from a web page; write `{fixed}` with two ASCII hyphens", origin)
            meant = REGISTRY.get(fixed[2:].partition("=")[0])
            i += 2 if meant is not None and meant.takes_value and "=" not in fixed and not meant.optional_value else 1
            continue
        if arg.startswith("--") and len(arg) > 2:
            i = _long(col, args, i, origin)
        elif arg.startswith("-") and len(arg) > 1:
            i = _short(col, args, i, origin)
        else:
            _positional(col, arg, origin)
            i += 1


def _resolve_long(col: Collected, name: str, origin: Origin) -> Option | None:
    option = REGISTRY.get(name)
    if option is not None:
        return option
    matches = REGISTRY.prefix_matches(name)
    distinct = {REGISTRY[m].name for m in matches}
    if len(distinct) == 1:
        option = REGISTRY[matches[0]]
        full = next(m for m in matches if REGISTRY[m] is option)
        col.warn(f"`--{name}` is an abbreviation of `--{full}`; write it out in full (abbreviations silently "
                 f"change meaning when an option is added)", origin)
        return option
    if matches:
        listed = " ".join(f"`--{m}`" for m in matches[:8])
        col.error(f"`--{name}` is ambiguous: it abbreviates {listed}{' ...' if len(matches) > 8 else ''}; "
                  f"write the whole option name", origin)
        return None
    col.error(f"`--{name}` is not an option.{did_you_mean(name)} (`uisge --help` lists every option)", origin)
    return None


def _long(col: Collected, args: list[str], i: int, origin: Origin) -> int:
    body = args[i][2:]
    name, eq, inline = body.partition("=")
    option = _resolve_long(col, name, origin)
    if option is None:
        # skip what is probably this option's value, so one typo gives one message
        if not eq and i + 1 < len(args) and not args[i + 1].startswith("-"):
            return i + 2
        return i + 1
    key = name if REGISTRY.get(name) is option else option.name
    if eq:
        add(col, key, inline, origin, from_file=False)
        return i + 1
    if not option.takes_value:
        add(col, key, None, origin, from_file=False)
        return i + 1
    if option.optional_value:
        nxt = args[i + 1] if i + 1 < len(args) else None
        if nxt is not None and not nxt.startswith("-") and kind_of(split_section(nxt)[0]) is None:
            add(col, key, nxt, origin, from_file=False)
            return i + 2
        add(col, key, None, origin, from_file=False)
        return i + 1
    if i + 1 >= len(args):
        col.error(f"`--{name}` needs a value{_metavar(option)}", origin)
        return i + 1
    add(col, key, args[i + 1], origin, from_file=False)
    return i + 2


def _metavar(option: Option) -> str:
    return f" ({option.metavar})" if option.metavar else ""


def _short(col: Collected, args: list[str], i: int, origin: Origin) -> int:
    arg = args[i]
    pos = 1
    while pos < len(arg):
        letter = arg[pos]
        option = REGISTRY.short(letter)
        if option is None:
            col.error(f"`-{letter}` (in {arg!r}) is not an option; long options take two hyphens, as `--{arg[1:]}`"
                      f"{did_you_mean(arg[1:])}" if len(arg) > 2 else f"`-{letter}` is not an option", origin)
            return i + 1
        if not option.takes_value:
            add(col, option.name, None, origin, from_file=False)
            pos += 1
            continue
        rest = arg[pos + 1 :]
        if rest:
            add(col, option.name, rest, origin, from_file=False)
            return i + 1
        if i + 1 >= len(args):
            col.error(f"`-{letter}` (--{option.name}) needs a value{_metavar(option)}", origin)
            return i + 1
        add(col, option.name, args[i + 1], origin, from_file=False)
        return i + 2
    return i + 1


def _positional(col: Collected, arg: str, origin: Origin) -> None:
    if not arg.strip():
        col.error("this argument is only white space: in a shell, a backslash followed by spaces (`\\ `) does not "
                  "continue the line, so everything on the following lines was run as separate commands and never "
                  "reached uisge. Remove the spaces after each `\\`, and move `# comments` out of the command", origin)
        return
    path, _ = split_section(arg)
    kind = kind_of(path)
    if kind is not None:
        load_file(col, arg, kind, origin)
        return
    if path.endswith((".py", ".wsgi")):
        col.error(f"{arg!r} is not a config file; to serve that file write `--wsgi-file {arg}`", origin)
        return
    if arg.startswith("#"):
        col.error(f"{arg!r} looks like a shell comment that reached uisge as an argument; quote nothing after `#` "
                  f"and put comments on their own lines", origin)
        return
    col.error(f"{arg!r} is neither an option nor a config file (.ini, .yaml, .yml, .json)", origin)
