"""A real redis-server for tests: started on a free loopback port in the test's temp dir (no persistence),
stopped afterwards; `restart()` brings it back on the same port. A missing redis-server fails the run under
the project's test command (scripts/test installs it) and skips elsewhere."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.integration.nginx import free_port, require_tool


class RedisServer:
    def __init__(self, tmp: Path) -> None:
        self.binary = require_tool("redis-server", "/usr/bin/redis-server")
        self.tmp = tmp
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.tmp / 'redis.sock'}?db=0"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.tmp), "--unixsocket",
                                      str(self.tmp / "redis.sock")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
