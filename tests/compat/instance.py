"""Run one server (uWSGI or uisge, see conftest.Binary) for a compatibility case: its output goes to a log
file, the case waits for log text or a port, talks HTTP, and stop() ends the whole process group so that no
stray worker, mule or spooler outlives the case. Nothing here knows which server it runs."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.compat.conftest import Binary
from tests.integration.server import read_response


class Instance:
    def __init__(self, binary: Binary, args: list[str], cwd: str | os.PathLike, log: Path,
                 env: dict | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(binary.env)
        full_env.update(env or {})
        self.binary, self.log_path = binary, log
        self.out = open(log, "ab")
        self.proc = subprocess.Popen([binary.path, *args], cwd=str(cwd), env=full_env, stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, pattern: str, timeout: float = 20, count: int = 1) -> str:
        """Wait until the regular expression `pattern` matched `count` times in the log; return the log."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if len(re.findall(pattern, text)) >= count:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.binary}: no {pattern!r} (x{count}) in {timeout} s; log:\n{text[-3000:]}")
            time.sleep(0.05)

    def wait_port(self, port: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{self.binary}: port {port} never accepted; log:\n{self.log()[-3000:]}")
                time.sleep(0.05)

    def wait_exit(self, timeout: float = 20) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.binary}: still running after {timeout} s; log:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # both: stop now (what a case checks is checked by then)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # children a daemonized or crashed master left behind
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(5)
        self.out.close()


def request(port: int, raw: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        return read_response(sock)


def get(port: int, path: str = "/", timeout: float = 10) -> tuple[int, dict, bytes]:
    return request(port, f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode(), timeout)
