"""systemd's side, played for real: a NOTIFY_SOCKET datagram socket receiving READY/RELOADING/STOPPING,
socket activation with LISTEN_FDS, and dropping to an unprivileged uid/gid after binding."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.integration.server import APPS, Server
from tests.integration.test_master import children, get, wait_for


def test_notify_ready_reloading_stopping(tmp_path):
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(20)
    server = Server(["--master", "--processes", "2", "--http-socket", "127.0.0.1:0", "--wsgi-file",
                     str(APPS / "testapp.py")], cwd=str(tmp_path), env={"NOTIFY_SOCKET": path})
    try:
        def next_message() -> str:
            return listener.recv(4096).decode()

        assert "READY=1" in next_message()
        os.kill(server.proc.pid, signal.SIGHUP)
        assert "RELOADING=1" in next_message()
        assert "READY=1" in next_message()
        os.kill(server.proc.pid, signal.SIGTERM)
        assert "STOPPING=1" in next_message()
        assert server.proc.wait(20) == 0
    finally:
        server.stop()
        listener.close()


def test_socket_activation_uses_the_passed_socket(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    fd = sock.fileno()

    # what systemd does: the socket is fd 3, LISTEN_PID is the service's own pid (exec keeps sh's $$)
    proc = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", sys.executable, "-m", "uisge",
                             "--http-socket", f"127.0.0.1:{port}", "--wsgi-file", str(APPS / "testapp.py")],
                            cwd=str(tmp_path), pass_fds=(3, fd), preexec_fn=lambda: os.dup2(fd, 3),
                            stderr=subprocess.PIPE, text=True)
    sock.close()
    try:
        assert wait_for(lambda: get(("127.0.0.1", port))[0] == 200 if _answers(port) else False, 10)
    finally:
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=20)[1]
    assert f"from systemd 127.0.0.1:{port}" in err, err


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root (CI runs the suite as root)")
def test_binds_as_root_then_runs_as_uid_gid(tmp_path_factory):
    nobody = pwd.getpwnam("nobody")
    tmp_path = Path(tempfile.mkdtemp(prefix="uisge-uid-"))  # pytest's own temp root is 0700: nobody can't enter
    os.chmod(tmp_path, 0o755)
    app = tmp_path / "plain.py"  # imports nothing: this machine's Python lives under /root, unreadable to nobody
    app.write_text("def application(environ, start_response):\n"
                   "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                   "    return [b'Hello World!']\n")
    app.chmod(0o644)
    server = Server(["--master", "--processes", "2", "--http-socket", "127.0.0.1:0", "--wsgi-file", str(app),
                     "--uid", "nobody", "--gid", str(nobody.pw_gid)], cwd=str(tmp_path))
    try:
        assert get(server.address())[0] == 200
        for pid in [server.proc.pid, *wait_for(lambda: children(server.proc.pid))]:
            status = open(f"/proc/{pid}/status").read()
            uid_line = next(l for l in status.splitlines() if l.startswith("Uid:"))
            assert uid_line.split()[1:] == [str(nobody.pw_uid)] * 4, (pid, uid_line)
        assert f"setuid() to {nobody.pw_uid}" in server.log()
    finally:
        server.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)
