"""The stats server, run inside the master's loop: on `stats` it writes uWSGI 2.0's JSON document and
closes (what uwsgitop and `--connect-and-read` expect); with `stats-http` (and always on `metrics`) it
answers HTTP: `/metrics` in the Prometheus text format, `/healthz`, `/readyz`, a live dashboard for a
browser asking `/` for text/html (dashboard.html polls the JSON), anything else the JSON.

Reads a Snapshot the master hands it (the worker table, scoreboard slots, listeners) and /proc; never
talks to the workers, so serving stats cannot slow requests, and never reads the master's fields.
A client gets at most `socket-timeout` to send its request; sends use a short timeout.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from uisge import __version__
from uisge.errors import UisgeError
from uisge.master.backlog import listen_queue
from uisge.master.scoreboard import BUCKETS
from uisge.worker.health import PAGE

DASHBOARD = Path(__file__).with_name("dashboard.html")


def _accept_header(head: bytes) -> bytes:
    for line in head.split(b"\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"accept":
            return value.lower()
    return b""


def proc_memory(pid: int) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            size, resident = fh.read().split()[:2]
        return int(resident) * PAGE, int(size) * PAGE
    except (OSError, ValueError):
        return 0, 0


@dataclass(frozen=True)
class WorkerRow:
    """One worker id as the stats show it."""

    wid: int
    pid: int = 0  # 0: no process (cheap, or between a death and its respawn)
    accepting: bool = False
    slot: dict[str, Any] | None = None  # its scoreboard slot (master/scoreboard.py Board.read)
    harakiri_count: int = 0
    respawns: int = 0
    cheap: bool = False


@dataclass(frozen=True)
class Snapshot:
    """What the master shows the stats server, taken when a client asks."""

    workers: list[WorkerRow] = field(default_factory=list)
    listeners: list = field(default_factory=list)  # worker/connection.py Listener
    paused: bool = False
    ready: bool = False
    group: dict | None = None  # tasks-backend: members, leader (tasks/group.py's Group.state())


class StatsServer:
    def __init__(self, opts, snapshot: Callable[[], Snapshot]) -> None:
        self.snapshot = snapshot
        self.opts = opts
        self.socks: list[tuple[socket.socket, str, bool]] = []
        self.labels: list[str] = []
        if self.opts.stats:
            self.socks.append(self._bind(self.opts.stats, "stats", bool(self.opts.stats_http)))
            self.labels.append("Stats server")
        if self.opts.metrics:
            self.socks.append(self._bind(self.opts.metrics, "metrics", True))
            self.labels.append("Metrics server")

    def _bind(self, addr, option: str, http: bool) -> tuple[socket.socket, str, bool]:
        try:
            if addr.family == "unix":
                path = addr.path
                if os.path.exists(path):
                    os.unlink(path)
                sock = socket.socket(socket.AF_UNIX)
                sock.bind(path)
                name = path
            else:
                sock = socket.socket(socket.AF_INET6 if addr.family == "inet6" else socket.AF_INET)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((addr.host or "0.0.0.0", addr.port))
                host, port = sock.getsockname()[:2]
                name = f"{host}:{port}"
            sock.listen(64)
        except OSError as exc:
            raise UisgeError(f"{option} = {addr.text}: cannot bind: {exc.strerror or exc}") from None
        sock.setblocking(False)
        return sock, name, http

    def register(self, sel: selectors.BaseSelector, say) -> None:
        for (sock, name, http), kind in zip(self.socks, self.labels):
            say(f"*** {kind} enabled on {name} fd: {sock.fileno()}{' (HTTP)' if http else ''} ***")
            sel.register(sock, selectors.EVENT_READ, lambda s=sock, h=http: self._accept(s, h))
        self.sel = sel

    def close(self) -> None:
        for sock, name, _ in self.socks:
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError, AttributeError):
                pass
            sock.close()
            if name.startswith("/"):
                try:
                    os.unlink(name)
                except OSError:
                    pass

    # -- serving
    def _accept(self, sock: socket.socket, http: bool) -> None:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        conn.settimeout(1.0)
        if not http:
            self._send(conn, self.json_bytes())
            return
        conn.setblocking(False)
        deadline = time.monotonic() + float(self.opts.socket_timeout or 60)
        self.sel.register(conn, selectors.EVENT_READ, lambda c=conn, d=deadline: self._http(c, d, b""))

    def _http(self, conn: socket.socket, deadline: float, buf: bytes) -> None:
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        buf += data
        if data and b"\r\n\r\n" not in buf and b"\n\n" not in buf and len(buf) < 8192 and time.monotonic() < deadline:
            self.sel.modify(conn, selectors.EVENT_READ, lambda c=conn, d=deadline, b=buf: self._http(c, d, b))
            return
        self.sel.unregister(conn)
        conn.setblocking(True)
        conn.settimeout(1.0)
        if not buf:
            conn.close()
            return
        line = buf.split(b"\r\n", 1)[0].split(b"\n", 1)[0].decode("latin-1").split()
        path = line[1].split("?", 1)[0] if len(line) >= 2 else "/"
        if path == "/metrics":
            status, ctype, body = "200 OK", "text/plain; version=0.0.4; charset=utf-8", self.prometheus().encode()
        elif path == "/healthz":
            status, ctype, body = "200 OK", "text/plain", b"ok\n"
        elif path == "/readyz":
            ready = self.snapshot().ready
            status, ctype, body = ("200 OK" if ready else "503 Service Unavailable"), "text/plain", \
                (b"ready\n" if ready else b"not ready: workers are starting or the server is stopping\n")
        elif path == "/" and b"text/html" in _accept_header(buf):
            status, ctype, body = "200 OK", "text/html; charset=utf-8", DASHBOARD.read_bytes()
        else:
            status, ctype, body = "200 OK", "application/json", self.json_bytes()
        head = (f"HTTP/1.0 {status}\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self._send(conn, head + body)

    @staticmethod
    def _send(conn: socket.socket, data: bytes) -> None:
        try:
            conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    # -- the documents
    def json_bytes(self) -> bytes:
        doc = self.document()
        if self.opts.stats_minified:
            return json.dumps(doc, separators=(",", ":")).encode()
        return json.dumps(doc, indent="\t", separators=(",", ":")).encode()

    def workers(self, snap: Snapshot) -> list[dict]:
        """uWSGI's worker entries, one per worker id."""
        out = []
        for row in snap.workers:
            slot = row.slot
            rss, vsz = proc_memory(row.pid) if row.pid else (0, 0)
            busy = bool(slot and slot["in_request"])
            entry = {
                "id": row.wid, "pid": row.pid, "accepting": int(row.accepting),
                "requests": slot["requests"] if slot else 0, "delta_requests": slot["requests"] if slot else 0,
                "exceptions": slot["exceptions"] if slot else 0,
                "harakiri_count": row.harakiri_count, "signals": 0, "signal_queue": 0,
                "status": "cheap" if row.cheap else ("busy" if busy else "pause" if snap.paused else "idle"),
                "rss": rss, "vsz": vsz,
                "running_time": int((slot["running_time"] if slot else 0) * 1_000_000),
                "last_spawn": int(slot["spawned"]) if slot and slot["spawned"] else 0,
                "respawn_count": row.respawns + 1, "tx": slot["tx"] if slot else 0,
                "avg_rt": int((slot["avg_rt"] if slot else 0) * 1_000_000),
                "websockets": slot["websockets"] if slot else 0,  # (uisge's: open websockets of an ASGI app)
                "websockets_total": slot["websockets_total"] if slot else 0,
                "apps": [{"id": 0, "modifier1": 0, "mountpoint": "", "startup_time": 0,
                          "requests": slot["requests"] if slot else 0,
                          "exceptions": slot["exceptions"] if slot else 0, "chdir": ""}],
            }
            if not self.opts.stats_no_cores:
                start = slot["current_start"] if slot else 0
                entry["cores"] = [{"id": 0, "requests": slot["requests"] if slot else 0, "static_requests": 0,
                                   "routed_requests": 0, "offloaded_requests": 0, "write_errors": 0,
                                   "read_errors": 0, "in_request": int(busy), "vars": [],
                                   "req_info": {"request_start": int(start)} if busy and start else {}}]
            entry["histogram"] = slot["histogram"] if slot else (0,) * (len(BUCKETS) + 1)
            out.append(entry)
        return out

    def document(self) -> dict:
        snap = self.snapshot()
        sockets, queue = [], 0
        for listener in snap.listeners:
            waiting, backlog = listen_queue(listener.sock)
            queue = max(queue, waiting)
            sockets.append({"name": listener.name, "proto": "uwsgi" if listener.proto == "uwsgi" else "http",
                            "queue": waiting, "max_queue": backlog or self.opts.listen, "shared": 0,
                            "can_offload": 0})
        workers = self.workers(snap)
        for w in workers:
            w.pop("histogram")
        doc = {"version": f"uisge-{__version__}", "listen_queue": queue, "listen_queue_errors": 0,
               "signal_queue": 0, "load": queue, "pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(),
               "cwd": os.getcwd(), "locks": [{"user 0": 0}], "sockets": sockets, "workers": workers}
        if snap.group is not None:
            doc["group"] = snap.group
        return doc

    def prometheus(self) -> str:
        """Prometheus text format; names follow the common uwsgi_exporter where they overlap."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                lines.append(f"{name}{labels} {value}")

        snap = self.snapshot()
        workers = self.workers(snap)
        queues = [(listener, listen_queue(listener.sock)) for listener in snap.listeners]
        metric("uwsgi_listen_queue_length", "gauge", "Connections waiting in the listen backlog.",
               [(f'{{socket="{l.name}"}}', q[0]) for l, q in queues])
        wl = [(f'{{worker_id="{w["id"]}"}}', w) for w in workers]
        metric("uwsgi_worker_requests_total", "counter", "Requests served by the worker process.",
               [(lab, w["requests"]) for lab, w in wl])
        metric("uwsgi_worker_exceptions_total", "counter", "Requests whose app raised.",
               [(lab, w["exceptions"]) for lab, w in wl])
        metric("uwsgi_worker_harakiri_count_total", "counter", "Requests killed by harakiri.",
               [(lab, w["harakiri_count"]) for lab, w in wl])
        metric("uwsgi_worker_respawn_count_total", "counter", "Times the worker was (re)spawned.",
               [(lab, w["respawn_count"]) for lab, w in wl])
        metric("uwsgi_worker_busy", "gauge", "1 while the worker runs a request.",
               [(lab, int(w["status"] == "busy")) for lab, w in wl])
        metric("uwsgi_worker_accepting", "gauge", "1 when the worker accepts requests.",
               [(lab, w["accepting"]) for lab, w in wl])
        metric("uwsgi_worker_rss_bytes", "gauge", "Resident memory.", [(lab, w["rss"]) for lab, w in wl])
        metric("uwsgi_worker_vsz_bytes", "gauge", "Address space.", [(lab, w["vsz"]) for lab, w in wl])
        metric("uwsgi_worker_transmitted_bytes_total", "counter", "Bytes sent (head and body).",
               [(lab, w["tx"]) for lab, w in wl])
        metric("uwsgi_worker_average_response_time_seconds", "gauge", "Running average of request time.",
               [(lab, w["avg_rt"] / 1e6) for lab, w in wl])
        metric("uisge_worker_websockets_open", "gauge", "Websockets open now (ASGI apps).",
               [(lab, w["websockets"]) for lab, w in wl])
        metric("uisge_worker_websockets_total", "counter", "Websockets accepted (ASGI apps).",
               [(lab, w["websockets_total"]) for lab, w in wl])
        if snap.group is not None:
            metric("uisge_group_members", "gauge", "Instances in this instance's tasks-backend group.",
                   [("", len(snap.group["members"]))])
            metric("uisge_group_leading", "gauge", "1 while this instance holds the group's scheduler lease.",
                   [("", int(snap.group["leading"]))])
            metric("uisge_group_backend_reachable", "gauge", "1 while the tasks-backend answers.",
                   [("", int(snap.group["reachable"]))])
            metric("uisge_group_spool_tasks", "gauge", "Tasks in the group's spool queue, by state.",
                   [(f'{{state="{k}"}}', v) for k, v in snap.group["queue"].items()])
        lines.append("# HELP uisge_request_duration_seconds Request time, all workers.")
        lines.append("# TYPE uisge_request_duration_seconds histogram")
        totals = [sum(w["histogram"][i] for w in workers) for i in range(len(BUCKETS) + 1)]
        running = 0
        for bound, count in zip((*BUCKETS, float("inf")), totals):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'uisge_request_duration_seconds_bucket{{le="{le}"}} {running}')
        lines.append(f"uisge_request_duration_seconds_count {running}")
        lines.append(f"uisge_request_duration_seconds_sum {sum(w['running_time'] for w in workers) / 1e6}")
        return "\n".join(lines) + "\n"
