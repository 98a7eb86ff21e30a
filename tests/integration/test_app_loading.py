"""App loading as a user meets it: module vs file, callable, and failures that stop start-up (exit 22)."""

from tests.conftest import run_uisge
from tests.integration.server import Server, read_response


def test_module_not_found_vs_failing_import(tmp_path):
    missing = run_uisge("--http-socket", "127.0.0.1:0", "--module", "nosuchpkg.wsgi", cwd=tmp_path)
    assert missing.returncode == 22
    assert "module 'nosuchpkg.wsgi' not found" in missing.stderr and "chdir" in missing.stderr
    (tmp_path / "broken.py").write_text("import nosuch_dependency\napplication = None\n")
    broken = run_uisge("--http-socket", "127.0.0.1:0", "--module", "broken", cwd=tmp_path)
    assert broken.returncode == 22
    assert "module 'broken' failed while importing: ModuleNotFoundError" in broken.stderr
    assert broken.stderr.count("Traceback (most recent call last)") == 1


def test_missing_callable_names_what_is_there(tmp_path):
    (tmp_path / "app.py").write_text("def app(e, s):\n    s('200 OK', [])\n    return [b'x']\n")
    result = run_uisge("--http-socket", "127.0.0.1:0", "--wsgi-file", "app.py", cwd=tmp_path)
    assert result.returncode == 22 and "unable to find 'application' callable" in result.stderr
    assert "callables there: app" in result.stderr


def test_module_callable_and_chdir_pythonpath_env(tmp_path):
    pkg = tmp_path / "proj" / "site1"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "wsgi.py").write_text(
        "import os\n"
        "def app(environ, start_response):\n"
        "    body = os.environ['GREETING'].encode()\n"
        "    start_response('200 OK', [('Content-Length', str(len(body)))])\n"
        "    return [body]\n")
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(f"[uwsgi]\nhttp = 127.0.0.1:0\nchdir = {tmp_path}/proj\nmodule = site1.wsgi:app\n"
                   "env = GREETING=hi from env\nprocesses = 2\nthreads = 2\n")
    server = Server([str(ini)], cwd=str(tmp_path))
    try:
        for _ in range(4):
            with server.connect() as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(sock)[2] == b"hi from env"
    finally:
        assert server.stop() == 0


def test_callable_factory_and_chdir2(tmp_path):
    """`callable-factory` calls create_app() once at load; `chdir2` moves to a directory after the load."""
    project = tmp_path / "project"
    data = tmp_path / "data"
    project.mkdir()
    data.mkdir()
    (project / "factory.py").write_text(
        "import os\n"
        "CALLS = []\n"
        "def create_app():\n"
        "    CALLS.append(1)\n"
        "    loaded_in = os.getcwd()\n"
        "    def app(environ, start_response):\n"
        "        start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "        return [f'{len(CALLS)}|{loaded_in}|{os.getcwd()}'.encode()]\n"
        "    return app\n")
    for loader in (["--wsgi-file", "factory.py", "--callable", "create_app"], ["--module", "factory:create_app"]):
        server = Server(["--http-socket", "127.0.0.1:0", *loader, "--callable-factory", "--chdir2", str(data)],
                        cwd=str(project), env={"PYTHONPATH": str(project)})
        try:
            import socket

            with socket.create_connection(server.address(), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                status, _headers, body = read_response(sock)
            assert status == 200
            assert body.decode() == f"1|{project}|{data}", loader
            assert f"chdir() to {data}" in server.log()
        finally:
            server.stop()
