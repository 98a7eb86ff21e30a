"""Options about configuration itself: config files, variables, strictness."""

from uisge.config.declare import refused, topic

opt = topic("config")

OPTIONS = (
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
