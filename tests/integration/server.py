"""Start a real uisge process for a test and find its bound addresses from its log."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

APPS = Path(__file__).resolve().parents[1] / "fixtures" / "apps"
BOUND = re.compile(r"^(HTTP|uwsgi) socket \d+ bound to (\S+) ")


class Server:
    def __init__(self, args: list[str], cwd: str, env: dict | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "uisge", *args], cwd=cwd, env=full_env,
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        self.addresses: list[tuple[str, str]] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(20):
            self.stop()
            raise RuntimeError("uisge did not start:\n" + self.log())

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            m = BOUND.match(line)
            if m:
                self.addresses.append((m.group(1), m.group(2)))
            if line.startswith("spawned uisge worker"):
                self._ready.set()
        self._ready.set()

    def log(self) -> str:
        return "".join(self.lines)

    def wait_log(self, text: str, timeout: float = 5) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return False

    def address(self, kind: str = "HTTP", index: int = 0):
        found = [a for k, a in self.addresses if k == kind][index]
        if found.startswith("/") or found.startswith("@"):
            return found
        host, _, port = found.rpartition(":")
        return host.strip("[]"), int(port)

    def connect(self, kind: str = "HTTP", index: int = 0) -> socket.socket:
        addr = self.address(kind, index)
        if isinstance(addr, str):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(addr)
        else:
            sock = socket.create_connection(addr, timeout=10)
        sock.settimeout(10)
        return sock

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)  # the log is whole once stop() returns (children may write after the master exits)
        return self.proc.returncode


def recv_all(sock: socket.socket, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


_LEFTOVER: dict[int, bytes] = {}


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """Read one HTTP/1.1 response framed by Content-Length or chunked (pipelined ones stay buffered)."""
    status, headers, body, rest = _read_response(sock, _LEFTOVER.pop(id(sock), b""))
    _LEFTOVER[id(sock)] = rest
    return status, headers, body


def _read_response(sock: socket.socket, buf: bytes):
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before a full head: {buf!r}")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if status < 200 or status in (204, 304):  # never a body
        return status, headers, b"", rest
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            rest += sock.recv(65536)
        return status, headers, rest[:n], rest[n:]
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            body += rest[:size]
            rest = rest[size + 2 :]
            if size == 0:
                return status, headers, body, rest
    return status, headers, rest + recv_all(sock), b""
