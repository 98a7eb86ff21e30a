"""Options about configuration itself: config files, variables, strictness."""

from uisge.config.declare import refused, topic

opt = topic("config")

_LOGIC_ALIASES = {"if-env": ("ifenv",), "if-exists": ("ifexists",), "if-dir": ("ifdir", "if-directory"),
                  "if-plugin": ("ifplugin",)}
LOGIC_HELP = ("Config logic (uWSGI 2.0): the entries up to `endif` (`for`: `endfor`) count only when this holds "
              "(`for`: once per item); `%(_)` inside is the tested value or item.")

OPTIONS = (
    *(opt(name, "str", LOGIC_HELP, metavar="ARG", repeat=True, aliases=_LOGIC_ALIASES.get(name, ())) for name in
      sorted(["if-env", "if-not-env", "if-opt", "if-not-opt", "if-exists", "if-not-exists", "if-file",
              "if-not-file", "if-dir", "if-not-dir", "if-hostname", "if-not-hostname", "if-hostname-match",
              "if-not-hostname-match", "if-plugin", "if-not-plugin", "for", "for-glob", "for-times",
              "for-readline"])),
    opt("if-reload", "flag", LOGIC_HELP),
    opt("if-not-reload", "flag", LOGIC_HELP),
    *(opt(name, "str", "Ends a config logic block.", optional_value=True, repeat=True)
      for name in ("endif", "end-if", "endfor", "end-for", "end")),
    opt("print", "str", "Print this text on stdout when the instance starts (after the configuration is read).",
        repeat=True, metavar="TEXT"),
    opt("exit", "str", "Stop reading the configuration and exit with this code (1 when given no value).",
        optional_value=True, metavar="CODE"),
    opt("ini", "str", "Load an ini file: `FILE` reads its [uwsgi] section, `FILE:NAME` reads [NAME], `:NAME` "
        "re-reads the previous file. A bare `uisge FILE.ini` does the same.", repeat=True, immediate=True,
        metavar="FILE[:SECTION]"),
    opt("yaml", "str", "Load a YAML file (its top-level `uwsgi:` mapping, or `FILE:NAME`).", aliases=("yml",),
        short="y", repeat=True, immediate=True, metavar="FILE[:SECTION]"),
    opt("json", "str", "Load a JSON file (its top-level `uwsgi` object, or `FILE:NAME`).", aliases=("js",),
        short="j", repeat=True, immediate=True, metavar="FILE[:SECTION]"),
    opt("xml", "str", "Load an XML config.", short="x", repeat=True, immediate=True,
        **refused("XML configs are not supported; convert the file to ini (one `key = value` line per element)")),
    opt("include", "str", "Load another config file here, its format chosen by extension.", repeat=True,
        immediate=True, metavar="FILE"),
    opt("set", "keyval", "Set an option or a custom variable: `--set name=value`.", short="S", repeat=True,
        immediate=True, metavar="NAME=VALUE"),
    opt("set-placeholder", "keyval", "Set a custom variable usable as %(name); refuses real option names.",
        aliases=("set-ph",), repeat=True, immediate=True, metavar="NAME=VALUE"),
    opt("strict", "flag", "Turn every configuration warning (unknown keys, unused variables) into an error.",
        immediate=True),
    opt("inherit", "str", "Load a config file as a base (like include).", repeat=True, immediate=True,
        metavar="FILE"),
)
