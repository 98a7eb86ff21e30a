"""Every config and command line from shared/seeds/ loads, and `uisge check` shows what its author meant."""

from __future__ import annotations

import os
import re
import subprocess

from tests.conftest import SEEDS, materialise, run_uisge


def row(output: str, option: str, value: str, origin: str) -> None:
    pattern = rf"^  {re.escape(option)}\s+{re.escape(value)}\s+{re.escape(origin)}$"
    assert re.search(pattern, output, re.M), f"no row {option} = {value} from {origin} in:\n{output}"


def check(path, tmp_path):
    result = run_uisge("check", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_seed_000_minimal_ini(tmp_path):
    out = check(materialise("000_hunter.ini", tmp_path), tmp_path)
    row(out, "http", ":9898", "000_hunter.ini:4")
    row(out, "chdir", f"{tmp_path}/hunter/", "000_hunter.ini:5")
    row(out, "wsgi-file", "hunter/wsgi.py", "000_hunter.ini:6")
    row(out, "master", "true", "000_hunter.ini:7")
    row(out, "processes", "4", "000_hunter.ini:8")
    row(out, "threads", "2", "000_hunter.ini:9")
    assert "no warnings" in out


def test_seed_000_full_ini(tmp_path):
    out = check(materialise("000_hunter_full.ini", tmp_path), tmp_path)
    row(out, "static-map", f"/static/={tmp_path}/static/", "000_hunter_full.ini:9")
    row(out, "stats", "127.0.0.1:9897", "000_hunter_full.ini:10")
    row(out, "stats-http", "true", "000_hunter_full.ini:11")
    row(out, "max-requests", "5000", "000_hunter_full.ini:13")


def test_seed_001_inline_comments_and_custom_variables(tmp_path):
    out = check(materialise("001_mysite1.ini", tmp_path), tmp_path)
    name = "001_mysite1.ini"
    row(out, "uid", "www-data", f"{name}:2")  # not "www-data # Ubuntu系统下默认用户名"
    row(out, "gid", "www-data", f"{name}:3")
    row(out, "home", f"{tmp_path}/home/user1/Env/mysite1", f"{name}:7")
    row(out, "chdir", f"{tmp_path}/home/user1/mysite1", f"{name}:8")
    row(out, "module", "mysite1.wsgi:application", f"{name}:9")
    row(out, "master", "true", f"{name}:11")
    row(out, "processes", "2", f"{name}:12")
    row(out, "socket", f"{tmp_path}/run/uwsgi/mysite1.sock", f"{name}:17")
    row(out, "chown-socket", "www-data:www-data", f"{name}:31")
    row(out, "chmod-socket", "664", f"{name}:32")
    row(out, "pidfile", f"{tmp_path}/mysite1-master.pid", f"{name}:36")
    row(out, "daemonize", f"{tmp_path}/log/uwsgi/mysite1.log", f"{name}:40")
    row(out, "vacuum", "true", f"{name}:44")
    row(out, "buffer-size", "65536", f"{name}:60")
    row(out, "reload-on-as", "1024 MB", f"{name}:76")
    assert re.search(r"^  project\s+mysite1\s+001_mysite1.ini:4$", out, re.M)
    assert re.search(rf"^  base\s+{re.escape(str(tmp_path))}/home/user1\s+001_mysite1.ini:5$", out, re.M)
    assert "no warnings" in out


def test_seed_002_django_ini_warns_about_work(tmp_path):
    out = check(materialise("002_django.ini", tmp_path), tmp_path)
    row(out, "listen", "2048", "002_django.ini:16")
    row(out, "socket-timeout", "60", "002_django.ini:17")
    row(out, "die-on-term", "true", "002_django.ini:18")
    row(out, "module", "cmdb.wsgi", "002_django.ini:20")
    row(out, "stats", f"{tmp_path}/opt/cmdb/uwsgi/uwsgi.status", "002_django.ini:23")
    assert "002_django.ini:13: `work` is not an option. Did you mean `workers`?" in out
    assert not re.search(r"^  processes", out, re.M)  # `work = 20` sets nothing


def test_seed_002_work_is_an_error_in_strict_mode(tmp_path):
    path = materialise("002_django.ini", tmp_path)
    result = run_uisge("check", str(path), "--strict", cwd=tmp_path)
    assert result.returncode == 1
    assert "`work` is not an option. Did you mean `workers`?" in result.stderr
    assert "[strict]" in result.stderr


def test_seed_002_uwsgi_http_ini(tmp_path):
    out = check(materialise("002_uwsgi_http.ini", tmp_path), tmp_path)
    row(out, "socket", "0.0.0.0:18001", "002_uwsgi_http.ini:3")
    row(out, "processes", "20", "002_uwsgi_http.ini:10")  # written `workers=20`
    row(out, "touch-reload", f"{tmp_path}/opt/cmdb/uwsgi/reload", "002_uwsgi_http.ini:7")


def test_seed_002_recommended_ini_magic_vars(tmp_path):
    out = check(materialise("002_recommended.ini", tmp_path), tmp_path)
    row(out, "chdir", f"{tmp_path}/", "002_recommended.ini:3")  # %d: the ini's directory, with a slash
    row(out, "pidfile", f"{tmp_path}//uwsgi/uwsgi.pid", "002_recommended.ini:7")
    row(out, "processes", str(os.cpu_count()), "002_recommended.ini:13")  # %k
    row(out, "buffer-size", "32768", "002_recommended.ini:15")
    assert "`enable-threads` is accepted and ignored" in out


def test_seed_002_command_lines(tmp_path, uwsgi_shim):
    for line in (SEEDS / "002_commands.txt").read_text().splitlines():
        result = subprocess.run(["bash", "-c", line], env=uwsgi_shim, cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, (line, result.stderr)
        assert re.search(r"^  http\s+0.0.0.0:8001\s+argv\[2\]$", result.stdout, re.M)
    assert re.search(r"^  home\s+/path/to/env\s+argv\[5\]$", result.stdout, re.M) is None  # third line has none
    result = subprocess.run(["bash", "-c", (SEEDS / "002_commands.txt").read_text().splitlines()[1]],
                            env=uwsgi_shim, cwd=tmp_path, capture_output=True, text=True)
    out = result.stdout
    row(out, "home", "/path/to/env", "argv[6]")
    row(out, "module", "project.wsgi", "argv[7]")
    row(out, "master", "true", "argv[9]")
    row(out, "processes", "4", "argv[10]")
    row(out, "threads", "2", "argv[12]")


def test_seed_003_ini(tmp_path):
    out = check(materialise("003_novel.ini", tmp_path), tmp_path)
    base = f"{tmp_path}/data/Novel/novel_test"
    row(out, "static-map", f"/static={base}/static", "003_novel.ini:5")
    row(out, "threads", "8", "003_novel.ini:6")
    row(out, "http", "0.0.0.0:23606", "003_novel.ini:7")
    row(out, "socket", f"{base}/uwsgi/uwsgi.sock", "003_novel.ini:15")
    row(out, "post-buffering", "4096", "003_novel.ini:14")
    assert "`thunder-lock` is accepted and ignored" in out


def test_seed_004_ini(tmp_path):
    out = check(materialise("004_mysite.ini", tmp_path), tmp_path)
    row(out, "chdir", "./", "004_mysite.ini:4")
    row(out, "py-autoreload", "1", "004_mysite.ini:10")
    row(out, "socket", "./uwsgi/uwsgi.sock", "004_mysite.ini:13")
    row(out, "processes", "2", "004_mysite.ini:16")
    row(out, "disable-logging", "true", "004_mysite.ini:41")


def test_seed_004_multiline_command_with_comments_is_explained(tmp_path, uwsgi_shim):
    result = subprocess.run(["bash", str(SEEDS / "004_command.sh")], env=uwsgi_shim, cwd=tmp_path,
                            capture_output=True, text=True)
    assert "only white space" in result.stderr
    assert "a backslash followed by spaces" in result.stderr
    assert "nothing was started" in result.stderr


def test_seed_004_command_without_comments_works(tmp_path, uwsgi_shim):
    text = (SEEDS / "004_command.sh").read_text()
    fixed = re.sub(r"\\\s+#[^\n]*", "\\\\", text)
    result = subprocess.run(["bash", "-c", fixed], env=uwsgi_shim, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    row(out, "env", "DJANGO_SETTINGS_MODULE=mysite.settings", "argv[4]")
    row(out, "socket", "127.0.0.1:49152", "argv[8]")
    row(out, "processes", "5", "argv[9]")
    row(out, "harakiri", "20", "argv[12]")
    row(out, "max-requests", "5000", "argv[13]")


def test_seed_004_typographic_dashes(tmp_path, uwsgi_shim):
    result = subprocess.run(["bash", str(SEEDS / "004_blog.sh")], env=uwsgi_shim, cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "'–http' starts with a typographic dash (U+2013 EN DASH)" in result.stderr
    assert "write `--http` with two ASCII hyphens" in result.stderr
    assert "write `--wsgi-file` with two ASCII hyphens" in result.stderr
    assert ":8001" not in result.stderr.split("EN DASH")[-1].split("\n")[1:]  # the value is not reported again
