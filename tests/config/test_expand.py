"""%(name), $(ENV), @(file) and the magic variables, as uWSGI 2.0 expands them."""

import os
import socket

import pytest

from uisge.config.load import ConfigError, load


def ini(tmp_path, body, name="app.ini"):
    path = tmp_path / name
    path.write_text("[uwsgi]\n" + body)
    return str(path)


def test_placeholder_takes_first_value_and_custom_vars(tmp_path):
    opts = load([ini(tmp_path, "foo = first\nfoo = second\nenv = A=%(foo)\n")], {})
    assert opts.env == (("A", "first"),)


def test_placeholder_concat_math_and_unknown(tmp_path):
    path = ini(tmp_path, "bar = 10\nfoo = x\nenv = A=%(foo bar)\nenv = B=%(bar + 5)\nenv = C=%(bar * 2 - 1)\n"
                         "env = D=%(nope)\nenv = E=%(bar++)\n")
    opts = load([path], {})
    assert dict(opts.env) == {"A": "x10", "B": "15", "C": "19", "D": "%(nope)", "E": "11"}
    assert any("`%(nope)`" in m.text for m in opts.warnings())


def test_placeholder_refers_to_option_and_later_keys(tmp_path):
    opts = load([ini(tmp_path, "chdir = /srv/app\nstats = %(chdir)/stats.sock\npidfile = %(later)/pid\n"
                               "later = /run\n")], {})
    assert opts.stats.path == "/srv/app/stats.sock"
    assert opts.pidfile == "/run/pid"


def test_env_and_file_placeholders(tmp_path):
    (tmp_path / "secret.txt").write_text("s3cret\n")
    opts = load([ini(tmp_path, f"env = H=$(HOME)\nenv = U=$(UNSET_X)\nenv = S=@({tmp_path}/secret.txt)\n")],
                {"HOME": "/home/me"})
    assert dict(opts.env) == {"H": "/home/me", "U": "$(UNSET_X)", "S": "s3cret"}
    assert any("UNSET_X is not set" in m.text for m in opts.warnings())


def test_magic_variables(tmp_path):
    sub = tmp_path / "t"
    sub.mkdir()
    path = sub / "t1.ini"
    path.write_text("[uwsgi]\nenv = V=%k-%n-%s-%e-%c-%x-%h-%d-%%\nenv = P=%p\nenv = O=%o\n")
    opts = load([str(path)], {})
    env = dict(opts.env)
    assert env["V"] == f"{os.cpu_count()}-t1-t1.ini-ini-t--{socket.gethostname()}-{sub}/-%"
    assert env["P"] == str(path)
    assert env["O"] == str(path)


def test_section_magic_and_unknown_magic(tmp_path):
    path = tmp_path / "a.ini"
    path.write_text("[prod]\nenv = X=%x\nenv = Z=a%zb\n")
    opts = load([f"{path}:prod"], {})
    assert dict(opts.env) == {"X": "prod", "Z": "ab"}
    assert any("`%z` is not a magic variable" in m.text for m in opts.warnings())


def test_placeholder_loop_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="refers to itself"):
        load([ini(tmp_path, "a = %(b)\nb = %(a)\n")], {})
