"""In-process cost of one connection through the worker's pipeline, without wrk or a second core:
a unix (or TCP) listener, a client socket per request, `Pipeline.accept` serving it, the client reading
the answer. Prints µs per connection (wall and CPU of this process, client side included) for uisge's
pipeline and for a bare loop doing the same socket calls, so changes to the request path can be
compared in seconds. Not a test and not the benchmark (bench/run.py is); a tool for profiling:

    python bench/harness.py uwsgi|http [--profile]
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app import application  # noqa: E402
from uisge.config.load import load  # noqa: E402
from uisge.protocol.uwsgi import encode_packet  # noqa: E402
from uisge.wsgi.environ import base_environ  # noqa: E402
from uisge.worker.connection import Listener  # noqa: E402
from uisge.worker.loop import Worker  # noqa: E402

N = int(os.environ.get("HARNESS_N", "20000"))
UWSGI = encode_packet({"QUERY_STRING": "", "REQUEST_METHOD": "GET", "CONTENT_TYPE": "", "CONTENT_LENGTH": "",
                       "REQUEST_URI": "/", "PATH_INFO": "/", "DOCUMENT_ROOT": "/usr/share/nginx/html",
                       "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_SCHEME": "http", "REMOTE_ADDR": "127.0.0.1",
                       "REMOTE_PORT": "40000", "SERVER_PORT": "8080", "SERVER_NAME": "localhost",
                       "HTTP_HOST": "127.0.0.1:8080", "HTTP_USER_AGENT": "wrk"})
HTTP = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n"


def bare(lsock: socket.socket, proto: str) -> None:
    """The floor: what any server must do for one connection, and nothing else."""
    fd, _ = lsock._accept()
    os.set_blocking(fd, False)
    data = os.read(fd, 65536)
    env = {"PATH_INFO": "/", "wsgi.input": None, "len": len(data)}
    status = []
    body = b"".join(application(env, lambda s, h, e=None: status.append((s, h))))
    s, hs = status[0]
    head = "HTTP/1.1 " + s + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    os.write(fd, head.encode("latin-1") + body)
    os.close(fd)


def main() -> None:
    proto = sys.argv[1] if len(sys.argv) > 1 else "uwsgi"
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "s.sock")
    if proto == "uwsgi":
        lsock = socket.socket(socket.AF_UNIX)
        lsock.bind(path)
        addr, family, request = path, socket.AF_UNIX, UWSGI
    else:
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        addr, family, request = lsock.getsockname(), socket.AF_INET, HTTP
    lsock.listen(1024)
    lsock.setblocking(False)
    opts = load(["--disable-logging", *(a for a in sys.argv[2:] if a not in ("--profile", "--bare", "--nogc"))], first_index=0)
    listener = Listener(lsock, "uwsgi" if proto == "uwsgi" else "http", str(addr),
                        base_environ("localhost", "8080", False, False, None))
    worker = Worker(opts, [listener], [("", application)])
    pipeline = worker.pipeline

    serve = (lambda: bare(lsock, proto)) if "--bare" in sys.argv else (lambda: pipeline.accept(listener))

    def run(n: int) -> None:
        for _ in range(n):
            c = socket.socket(family)
            c.connect(addr)
            c.send(request)
            serve()
            c.recv(4096)
            c.close()

    run(2000)
    if "--nogc" in sys.argv:
        import gc
        gc.disable()
    else:
        import gc
        gc.freeze()
    if "--profile" in sys.argv:
        import cProfile
        import pstats

        cProfile.runctx("run(N)", globals(), {"run": run, "N": N}, "/tmp/harness.prof")
        pstats.Stats("/tmp/harness.prof").sort_stats("tottime").print_stats(25)
        return
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        run(N)
        print(f"{proto}: {(time.perf_counter() - t0) / N * 1e6:.1f} µs wall, "
              f"{(time.process_time() - c0) / N * 1e6:.1f} µs CPU per connection (client included)")


if __name__ == "__main__":
    main()
