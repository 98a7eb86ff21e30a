"""The engine's figures quoted in closing notes, measured with the integration tests' helpers (not a test:
the tests assert loose bounds, this prints the values): a neighbour's GET latency while clients hold
unread 32 MiB responses, and the worker's peak RSS during a 1 GiB Content-Length and a 256 MiB chunked
upload (polled every 10 ms from /proc, and VmHWM).

    python bench/engine_figures.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration import test_engine as T  # noqa: E402
from tests.integration.server import Server  # noqa: E402


def main() -> None:
    tmp = tempfile.mkdtemp()
    for threads in (1, 2):
        for path in ("/big?mb=32", "/big?mb=32&list=1"):
            server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", T.SHAPES, "--processes", "1",
                             "--threads", str(threads)], cwd=tmp)
            slow = T._hold_unread(server, path)
            time.sleep(0.2)
            latencies = []
            for _ in range(50):
                t0 = time.monotonic()
                assert T.get(server, "/generator")[0] == 200
                latencies.append((time.monotonic() - t0) * 1000)
            print(f"threads={threads} {path} unread: neighbour GET median {statistics.median(latencies):.2f} ms, "
                  f"worst {max(latencies):.2f} ms (50 GETs)")
            slow.close()
            server.stop()
    for size, chunked in ((1 << 30, False), (256 << 20, True)):
        server = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", T.SHAPES, "--processes", "1"], cwd=tmp)
        pid = int(T.get(server, "/pid")[2])
        before = T._rss_kib(pid)
        poller = T.RssPoller(pid)
        poller.start()
        t0 = time.monotonic()
        body, digest = T._upload(server, size, chunked)
        poller.stop.set()
        poller.join()
        got_size, got_digest = body.decode().split()
        print(f"{'chunked' if chunked else 'Content-Length'} upload of {size >> 20} MiB in {time.monotonic() - t0:.1f} s: "
              f"worker RSS {before / 1024:.1f} MiB before, peak {poller.peak / 1024:.1f} MiB, "
              f"VmHWM {T._rss_kib(pid, 'VmHWM') / 1024:.1f} MiB; the app read {got_size} bytes, "
              f"sha256 {'matches' if got_digest == digest else 'DIFFERS'}")
        server.stop()


if __name__ == "__main__":
    main()
