"""uWSGI 2.0's config logic (config/logic.py). The expected outputs were checked against uWSGI 2.0.31 built from
PyPI: the same ini printed the same lines and exited with the same codes."""

import subprocess
import sys

from uisge.config.load import load
from uisge.config.logic import apply
from uisge.config.origin import Entry, Origin


def entries(*pairs) -> list[Entry]:
    return [Entry(k, v, Origin("test", str(i))) for i, (k, v) in enumerate(pairs)]


def kept(result) -> list[tuple[str, str | None]]:
    return [(e.key, e.value) for e in result.entries]


def test_if_env_with_and_without_a_value_and_its_negation():
    env = {"STAGE": "prod"}
    assert kept(apply(entries(("if-env", "STAGE"), ("print", "stage %(_)"), ("endif", "")), env)) == \
        [("print", "stage prod")]
    assert kept(apply(entries(("if-env", "STAGE=dev"), ("print", "x"), ("endif", "")), env)) == []
    assert kept(apply(entries(("if-not-env", "MISSING"), ("print", "[%(_)]"), ("end", "")), env)) == \
        [("print", "[%(_)]")]  # nothing to put in %(_): it stays as written, as uWSGI
    assert kept(apply(entries(("if-not-env", "STAGE=dev"), ("print", "%(_)"), ("endif", "")), env)) == \
        [("print", "prod")]


def test_if_opt_sees_what_was_set_before_it_logic_keys_included():
    result = apply(entries(("socket", ":3031"), ("for", "1 2"), ("endfor", ""), ("if-opt", "socket"),
                           ("print", "on %(_)"), ("endif", ""), ("if-opt", "for=1 2"), ("print", "for %(_)"),
                           ("endif", ""), ("if-not-opt", "http"), ("print", "no http"), ("endif", "")), {})
    assert kept(result)[1:] == [("print", "on :3031"), ("print", "for 1 2"), ("print", "no http")]


def test_paths_hostname_reload_plugin(tmp_path):
    (tmp_path / "f").write_text("")
    checks = [("if-exists", str(tmp_path / "f"), True), ("if-exists", str(tmp_path / "nope"), False),
              ("if-file", str(tmp_path), False), ("if-dir", str(tmp_path), True), ("if-not-dir", str(tmp_path), False),
              ("if-hostname", "box", True), ("if-not-hostname", "box", False), ("if-hostname-match", "^b.x$", True),
              ("if-plugin", "python", True), ("if-not-plugin", "php", True), ("if-reload", None, False)]
    for key, arg, holds in checks:
        result = apply(entries((key, arg), ("print", "yes"), ("endif", "")), {}, hostname="box")
        assert (kept(result) == [("print", "yes")]) == holds, key
    assert kept(apply(entries(("if-not-reload", None), ("print", "first start"), ("endif", "")), {})) != []


def test_for_variants(tmp_path):
    (tmp_path / "a.ini").write_text("")
    (tmp_path / "b.ini").write_text("")
    (tmp_path / "lines").write_text("one\ntwo\n")
    assert kept(apply(entries(("for", "x y"), ("mule", "%(_).py"), ("endfor", "")), {})) == \
        [("mule", "x.py"), ("mule", "y.py")]
    assert [v for _, v in kept(apply(entries(("for-glob", str(tmp_path / "*.ini")), ("print", "%(_)"),
                                             ("end-for", "")), {}))] == [str(tmp_path / "a.ini"),
                                                                         str(tmp_path / "b.ini")]
    assert kept(apply(entries(("for-times", "3"), ("print", "%(_)"), ("endfor", "")), {})) == \
        [("print", "1"), ("print", "2"), ("print", "3")]
    assert kept(apply(entries(("for-readline", str(tmp_path / "lines")), ("print", "%(_)"), ("endfor", "")), {})) == \
        [("print", "one"), ("print", "two")]


def test_exit_stops_there_and_nesting_is_refused():
    result = apply(entries(("print", "a"), ("exit", "17"), ("print", "b")), {})
    assert result.exit_code == 17 and kept(result) == [("print", "a"), ("exit", "17")]
    assert apply(entries(("exit", None),), {}).exit_code == 1
    assert apply(entries(("if-env", "X"), ("exit", "3"), ("endif", "")), {}).exit_code is None  # skipped
    nested = apply(entries(("if-env", "HOME"), ("if-env", "PATH"), ("endif", "")), {"HOME": "/"})
    assert nested.error and "recursive logic" in nested.error


def test_the_command_line_prints_and_exits(tmp_path):
    opts = load(["--for", "a b", "--print", "item %(_)", "--endfor", "--http-socket", ":0"], first_index=0)
    assert opts.print == ("item a", "item b") and opts.exit_code is None
    ini = tmp_path / "x.ini"
    ini.write_text("[uwsgi]\nfor = 1 2\nprint = n=%(_)\nendfor =\nexit = 4\n")
    proc = subprocess.run([sys.executable, "-m", "uisge", str(ini)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 4 and proc.stdout == ""
