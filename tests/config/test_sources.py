"""Command line, environment and config files with uWSGI 2.0 semantics, and our clearer errors."""

import json

import pytest

from tests.conftest import run_uisge
from uisge.config.load import ConfigError, load


def errors_of(args, env=None):
    with pytest.raises(ConfigError) as info:
        load(args, env or {})
    return "\n".join(str(m) for m in info.value.messages)


def test_value_forms_flags_and_repeats():
    opts = load(["--http", ":8000", "--processes=4", "--master", "--socket", ":1", "--socket=/tmp/s.sock",
                 "-p", "3", "-M", "--master=false"], {})
    assert opts.http == (opts.http[0],) and opts.http[0].port == 8000
    assert opts.processes == 3  # last wins
    assert opts.master is False  # `--master=false` is read as a boolean
    assert [a.text for a in opts.socket] == [":1", "/tmp/s.sock"]
    assert opts.origin("socket") == "argv[5], argv[7]"


def test_aliases_share_one_option():
    opts = load(["--workers", "5", "--virtualenv", "/v", "--wsgi", "m:app", "--file", "x.py", "--uwsgi-socket", ":3"], {})
    assert (opts.processes, opts.home, opts.module, opts.wsgi_file) == (5, "/v", "m:app", "x.py")
    assert opts.socket[0].port == 3


def test_unique_abbreviation_works_with_a_warning():
    opts = load(["--proces", "4"], {})
    assert opts.processes == 4
    assert "`--proces` is an abbreviation of `--processes`; write it out in full" in str(opts.warnings()[0])


def test_abbreviation_is_an_error_in_strict_mode():
    assert "abbreviation of `--processes`" in errors_of(["--proces", "4", "--strict"])


def test_unknown_and_ambiguous_options():
    text = errors_of(["--procesess", "4", "--foo", "--work", "2", "--wsgi-fil"])
    assert "argv[1]: `--procesess` is not an option. Did you mean `--processes`?" not in text  # names in ticks only
    assert "`--procesess` is not an option. Did you mean `processes`" in text
    assert "`--foo` is not an option." in text and "uisge --help" in text
    assert "`--work` is ambiguous: it abbreviates `--worker-reload-mercy` `--workers`" in text


def test_missing_value():
    assert "`--http` needs a value (ADDRESS)" in errors_of(["--http"])


def test_refused_option_says_why():
    assert "`https-socket` is not supported by uisge: uisge does not terminate TLS" in errors_of(
        ["--https-socket", ":443,a.crt,a.key"])


def test_bad_values_name_option_value_and_origin(tmp_path):
    path = tmp_path / "u.ini"
    path.write_text("[uwsgi]\nprocesses = four\nhttp-socket = 60\n")
    text = errors_of([str(path)])
    assert "u.ini:2: `processes = four`: 'four' is not a whole number" in text
    assert "u.ini:3: `http-socket = 60`: '60' is a number, not an address" in text


def test_uwsgi_env_vars_and_precedence():
    opts = load(["--processes", "2"], {"UWSGI_PROCESSES": "8", "UWSGI_HTTP_SOCKET": ":8000", "UWSGI_RELOADS": "3"})
    assert opts.processes == 2
    assert opts.http_socket[0].port == 8000
    assert opts.origin("http-socket") == "env UWSGI_HTTP_SOCKET"


def test_ini_file_section_and_reread(tmp_path):
    path = tmp_path / "multi.ini"
    path.write_text("[uwsgi]\nprocesses = 2\n[prod]\nprocesses = 8\nthreads = 4\n")
    assert load(["--ini", f"{path}:prod"], {}).processes == 8
    opts = load(["--ini", str(path), "--ini", ":prod"], {})
    assert (opts.processes, opts.threads) == (8, 4)
    assert "has no [staging] section (sections found: [uwsgi], [prod])" in errors_of([f"{path}:staging"])


def test_include_set_and_strict_in_file(tmp_path):
    (tmp_path / "base.ini").write_text("[uwsgi]\nmaster = true\nprocesses = 2\n")
    main = tmp_path / "main.ini"
    main.write_text(f"[uwsgi]\ninclude = {tmp_path}/base.ini\nset = threads=3\nset-ph = name=x\nprocesses = 6\n")
    opts = load([str(main)], {})
    assert (opts.master, opts.processes, opts.threads) == (True, 6, 3)
    (tmp_path / "strict.ini").write_text("[uwsgi]\nstrict = true\nwork = 20\n")
    assert "Did you mean `workers`? (It is kept" in errors_of([str(tmp_path / "strict.ini")])


def test_yaml_and_json(tmp_path):
    (tmp_path / "u.yaml").write_text("uwsgi:\n  http: :8000  # comment\n  master: true\n  socket:\n    - :1\n    - :2\n")
    opts = load([str(tmp_path / "u.yaml")], {})
    assert opts.http[0].port == 8000 and opts.master is True and [s.port for s in opts.socket] == [1, 2]
    assert opts.origin("http") == "u.yaml:2"
    (tmp_path / "u.json").write_text(json.dumps({"uwsgi": {"processes": 3, "master": False, "env": ["A=1", "B=2"]}}))
    opts = load(["--json", str(tmp_path / "u.json")], {})
    assert (opts.processes, opts.master, opts.env) == (3, False, (("A", "1"), ("B", "2")))


def test_missing_config_file_and_stray_arguments():
    text = errors_of(["/nope/uwsgi.ini", "app.py", "#comment"])
    assert "config file '/nope/uwsgi.ini' does not exist" in text
    assert "'app.py' is not a config file; to serve that file write `--wsgi-file app.py`" in text
    assert "looks like a shell comment" in text


def test_cli_check_exit_codes_and_streams(tmp_path):
    ok = run_uisge("check", "--http", ":8000", "--wsgi-file", "app.py", cwd=tmp_path)
    assert ok.returncode == 0 and "http" in ok.stdout and "argv[2]" in ok.stdout
    bad = run_uisge("check", "--proces", "4", "--foo", cwd=tmp_path)
    assert bad.returncode == 1
    assert "uisge: error: argv[4]: `--foo` is not an option." in bad.stderr
    assert "uisge: warning: argv[2]: `--proces` is an abbreviation of `--processes`" in bad.stderr
    assert "nothing was started" in bad.stderr
    assert run_uisge("--check", "--http", ":1", cwd=tmp_path).returncode == 0


def test_help_and_version():
    assert run_uisge("--version").stdout.startswith("uisge ")
    out = run_uisge("--help").stdout
    assert "-p, --processes, --workers INT" in out
