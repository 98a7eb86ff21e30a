import pytest

from tests.integration.server import APPS, Server


@pytest.fixture
def seen(tmp_path):
    return tmp_path / "seen.txt"


@pytest.fixture
def http_server(tmp_path, seen):
    server = Server(["--http-socket", "127.0.0.1:0", "--socket", str(tmp_path / "u.sock"), "--wsgi-file",
                     str(APPS / "testapp.py"), "--buffer-size", "8192", "--limit-post", "100000"],
                    cwd=str(tmp_path), env={"UISGE_TEST_SEEN": str(seen), "UISGE_TEST_VALIDATE": "1"})
    yield server
    server.stop()
