"""Side-by-side benchmark: uisge against uWSGI, gunicorn and granian, in one run, on this machine.

Each server runs one worker pinned to CPU 0 (`taskset`); wrk (and nginx, where it is in front) run
pinned to CPU 1. Every measurement is repeated (`--rounds`, interleaved across servers so a noisy
minute hurts all of them alike) and the median is reported, with ratios against uisge. The peers
are installed from PyPI into their own venv (bench/.peers) the first time. Nothing here is a test:
no figure is asserted anywhere.

    python bench/run.py                 # everything, prints the table
    python bench/run.py --write         # ... and puts it into bench/README.md
    python bench/run.py --only hello-keepalive --rounds 5 --duration 10
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
APP = HERE / "app.py"
ASGI_APP = HERE / "asgi_app.py"
# the minimal pure-Python connection loop, a yardstick (shared/ beside the repository's clone)
FLOOR = HERE.parent.parent / "shared" / "calibration" / "floor_conn.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PEERS = HERE / ".peers"
STATIC = HERE / "static"  # bench/static/small.css, served by the `static` scenario
PEER_PACKAGES = ["uwsgi", "gunicorn", "granian", "uvicorn"]
# uvicorn's fast parser and loop, and its two websocket implementations (no command of their own)
PEER_LIBRARIES = ["httptools", "uvloop", "websockets", "wsproto"]
SERVER_CPU, LOAD_CPU = "0", "1"
MARK_BEGIN, MARK_END = "<!-- bench:begin -->", "<!-- bench:end -->"


@dataclass
class Scenario:
    name: str
    title: str
    path: str = "/"
    connections: int = 50
    headers: list[str] = field(default_factory=list)
    post_bytes: int = 0
    via_nginx: bool = False
    servers: tuple[str, ...] = ("uisge", "uwsgi", "gunicorn", "granian")
    log: bool = False  # the request log on (uisge and uWSGI; the others log no requests by default)
    ws: bool = False  # websocket messages (bench/ws_load.py) instead of HTTP requests (wrk)


SCENARIOS = [
    Scenario("hello-keepalive", "Hello world, keep-alive, 50 connections, request log off"),
    Scenario("hello-keepalive-log", "Hello world, keep-alive, 50 connections, request log on (to a file)",
             servers=("uisge", "uwsgi"), log=True),
    Scenario("hello-close", "Hello world, `Connection: close` on every request, 50 connections, request log off",
             headers=["Connection: close"], servers=("uisge", "uwsgi", "floor", "gunicorn", "granian")),
    Scenario("hello-close-log", "Hello world, `Connection: close` on every request, 50 connections, request log "
             "on (to a file)", headers=["Connection: close"], servers=("uisge", "uwsgi"), log=True),
    Scenario("64k", "64 KiB response, keep-alive, 50 connections", path="/64k"),
    Scenario("post-1m", "1 MiB POST echoed back, keep-alive, 10 connections", path="/echo", connections=10,
             post_bytes=1 << 20),
    Scenario("nginx-uwsgi", "Hello world through nginx `uwsgi_pass` (unix socket), 50 connections, request log off",
             via_nginx=True, servers=("uisge", "uwsgi", "floor", "gunicorn")),
    Scenario("nginx-uwsgi-log", "Hello world through nginx `uwsgi_pass` (unix socket), 50 connections, request log "
             "on (to a file)", via_nginx=True, servers=("uisge", "uwsgi"), log=True),
    Scenario("static", "A 1 KiB CSS file through `static-map`, keep-alive, 50 connections; `uisge-hello` is the "
             "same uisge answering hello world from the app, in the same run",
             path="/static/small.css", servers=("uisge", "uisge-hello", "uwsgi")),
    Scenario("asgi-hello", "ASGI hello world, keep-alive, 50 connections (uvicorn with httptools and uvloop, "
             "granian's ASGI interface)", servers=("uisge-asgi", "uvicorn", "granian-asgi")),
    Scenario("ws-echo", "Websocket echo of 32-byte text messages, 50 websockets, one message in flight on each "
             "(uvicorn with its `websockets` and its `wsproto` implementation, granian's ASGI interface); the "
             "unit is messages", path="/ws", ws=True,
             servers=("uisge-asgi", "uvicorn", "uvicorn-wsproto", "granian-asgi")),
    Scenario("stats-polled", "Hello world, keep-alive, 50 connections, uisge with a master and `stats`: "
             "unpolled vs a client reading the stats every 100 ms", servers=("uisge-stats", "uisge-stats-polled")),
]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"bench: `{tool}` is not installed; {hint}")
    return path


def install_peers() -> dict[str, str]:
    """The peers' venv, made on first use; returns their versions."""
    python = PEERS / "bin" / "python"
    if not python.exists():
        say(f"bench: installing {', '.join(PEER_PACKAGES)} into {PEERS} (uWSGI compiles: about a minute)")
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
    missing = [p for p in PEER_PACKAGES if not (PEERS / "bin" / p).exists()]
    if missing:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *missing, *PEER_LIBRARIES], check=True)
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                         check=True).stdout
    versions = dict(line.split("==", 1) for line in out.splitlines() if "==" in line)
    return {p: versions.get(p, "?") for p in ("uWSGI", "gunicorn", "granian", "uvicorn", "uvloop")}


def server_command(name: str, scenario: Scenario, port: int, sock_path: str, stats_port: int = 0) -> list[str]:
    """The command line of one server; with `scenario.log` its request log goes to stderr (a file)."""
    peers = PEERS / "bin"
    if name.startswith("uisge-stats"):
        return [sys.executable, "-m", "uisge", "--http-socket", f"127.0.0.1:{port}", "--wsgi-file", str(APP),
                "--disable-logging", "--master", "--stats", f"127.0.0.1:{stats_port}"]
    log = [] if scenario.log else ["--disable-logging"]
    if name == "floor":
        return [sys.executable, str(FLOOR), sock_path if scenario.via_nginx else f"127.0.0.1:{port}",
                "uwsgi" if scenario.via_nginx else "http"]
    if scenario.via_nginx:
        if name == "uisge":
            return [sys.executable, "-m", "uisge", "--socket", sock_path, "--wsgi-file", str(APP), *log]
        if name == "uwsgi":
            return [str(peers / "uwsgi"), "--socket", sock_path, "--wsgi-file", str(APP), *log]
        return [str(peers / "gunicorn"), "-w", "1", "-k", "sync", "--protocol", "uwsgi", "-b", f"unix:{sock_path}",
                "--chdir", str(HERE), "app:application"]
    address = f"127.0.0.1:{port}"
    static = ["--static-map", f"/static={STATIC}"] if scenario.name == "static" else []
    if name == "uisge-asgi":
        return [sys.executable, "-m", "uisge", "--http-socket", address, "--wsgi-file", str(ASGI_APP),
                "--disable-logging"]
    if name in ("uvicorn", "uvicorn-wsproto"):
        return [str(peers / "uvicorn"), "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http",
                "httptools", "--ws", "wsproto" if name == "uvicorn-wsproto" else "websockets", "--no-access-log",
                "--log-level", "warning", "--app-dir", str(HERE), "asgi_app:application"]
    if name == "granian-asgi":
        return [str(peers / "granian"), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1", "--working-dir", str(HERE), "asgi_app:application"]
    if name in ("uisge", "uisge-hello"):
        return [sys.executable, "-m", "uisge", "--http-socket", address, "--wsgi-file", str(APP), *log, *static]
    if name == "uwsgi":
        return [str(peers / "uwsgi"), "--http-socket", address, "--wsgi-file", str(APP), *log, *static]
    if name == "gunicorn":
        return [str(peers / "gunicorn"), "-w", "1", "-k", "sync", "-b", address, "--chdir", str(HERE),
                "app:application"]
    if name == "granian":
        return [str(peers / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1", "--working-dir", str(HERE), "app:application"]
    raise ValueError(name)


NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    uwsgi_temp_path {tmp}/uwsgi;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            include {params};
            uwsgi_pass unix:{sock};
        }}
    }}
}}
"""


def wait_ready(port: int, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it answered")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(request)
                if s.recv(4096).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer on port {port} within {timeout:g} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


WRK_LINE = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
WRK_TOTAL = re.compile(r"(\d+) requests in")


def poll_stats(port: int, done: threading.Event) -> None:
    """Read the whole stats document every 100 ms, as a monitoring client would."""
    while not done.wait(0.1):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                while sock.recv(65536):
                    pass
        except OSError:
            pass


def tree_cpu(pid: int) -> float:
    """user+sys CPU seconds of a process and all its descendants (from /proc)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rpartition(")")[2].split()
        except OSError:
            continue
        # after the command: state ppid ... utime (11) stime (12), counted from the state field
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK)
    tree, total, grew = {pid}, 0.0, True
    while grew:
        grew = False
        for child, (ppid, _) in stats.items():
            if ppid in tree and child not in tree:
                tree.add(child)
                grew = True
    for member in tree:
        total += stats.get(member, (0, 0.0))[1]
    return total


def run_wrk(scenario: Scenario, port: int, duration: float, tmp: Path, path: str = "") -> tuple[float, int, int]:
    """(requests/s, errors, requests) of one wrk run."""
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{scenario.connections}", f"-d{duration:g}s"]
    for header in scenario.headers:
        cmd += ["-H", header]
    if scenario.post_bytes:
        script = tmp / "post.lua"
        script.write_text(f'wrk.method = "POST"\nwrk.body = string.rep("x", {scenario.post_bytes})\n'
                          f'wrk.headers["Content-Type"] = "application/octet-stream"\n')
        cmd += ["-s", str(script)]
    cmd.append(f"http://127.0.0.1:{port}{path or scenario.path}")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    rps = float(WRK_LINE.search(out).group(1)) if WRK_LINE.search(out) else 0.0
    errors = sum(int(n) for n in WRK_ERRORS.search(out).groups()) if WRK_ERRORS.search(out) else 0
    errors += int(WRK_NON2XX.search(out).group(1)) if WRK_NON2XX.search(out) else 0
    total = int(WRK_TOTAL.search(out).group(1)) if WRK_TOTAL.search(out) else 0
    return rps, errors, total


def run_ws(scenario: Scenario, port: int, duration: float) -> tuple[float, int, int]:
    """(messages/s, errors, messages) of one bench/ws_load.py run, on the load's CPU."""
    cmd = ["taskset", "-c", LOAD_CPU, str(PEERS / "bin" / "python"), str(HERE / "ws_load.py"), "127.0.0.1",
           str(port), scenario.path, str(scenario.connections), f"{duration:g}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout.split()
    total, errors = (int(out[0]), int(out[1])) if len(out) == 2 else (0, scenario.connections)
    return total / duration, errors, total


def measure(name: str, scenario: Scenario, duration: float, tmp: Path) -> tuple[float, int, int, float]:
    """(requests/s, errors, requests, server CPU µs per request) of one measurement."""
    port = free_port()
    sock_path = str(tmp / f"{name}.sock")
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    stats_port = free_port()
    cmd = ["taskset", "-c", SERVER_CPU, *server_command(name, scenario, port, sock_path, stats_port)]
    with open(tmp / f"{name}-{scenario.name}.log", "ab") as log:
        server = subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.DEVNULL, stderr=log)
    nginx = None
    try:
        if scenario.via_nginx:
            deadline = time.monotonic() + 30
            while not os.path.exists(sock_path):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not create {sock_path}")
                time.sleep(0.1)
            nginx_port = free_port()
            conf = tmp / "nginx.conf"
            # as root, nginx's workers would run as nobody and could not reach a socket in our 0700 tmp dir
            user = "user root;" if os.geteuid() == 0 else ""
            conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=nginx_port, sock=sock_path,
                                              params="/etc/nginx/uwsgi_params"))
            nginx = subprocess.Popen(["taskset", "-c", LOAD_CPU, "nginx", "-c", str(conf), "-p", str(tmp)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            port = nginx_port
            wait_ready(port, nginx, "nginx")
        else:
            wait_ready(port, server, name)
        path = "/" if name == "uisge-hello" else scenario.path  # the app's hello world, static-map still set
        if scenario.ws:
            run_ws(scenario, port, 1.0)  # warm-up
        else:
            run_wrk(scenario, port, 1.0, tmp, path)  # warm-up
        cpu0 = tree_cpu(server.pid)
        if scenario.ws:
            rps, errors, total = run_ws(scenario, port, duration)
        elif not name.endswith("-polled"):
            rps, errors, total = run_wrk(scenario, port, duration, tmp, path)
        else:
            polling = threading.Event()
            poller = threading.Thread(target=poll_stats, args=(stats_port, polling))
            poller.start()
            try:
                rps, errors, total = run_wrk(scenario, port, duration, tmp)
            finally:
                polling.set()
                poller.join()
        cpu = tree_cpu(server.pid) - cpu0
        return rps, errors, total, (cpu / total * 1e6) if total else 0.0
    finally:
        if nginx is not None:
            stop(nginx)
        stop(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per measurement (5)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per server; the median is kept (3)")
    parser.add_argument("--only", action="append", help="scenario name (repeatable): "
                        + ", ".join(s.name for s in SCENARIOS))
    parser.add_argument("--servers", help="comma-separated servers to keep (default: each scenario's own list)")
    parser.add_argument("--write", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args()
    need("wrk", "apt-get install -y wrk")
    need("taskset", "apt-get install -y util-linux")
    scenarios = [s for s in SCENARIOS if not args.only or s.name in args.only]
    if args.servers:
        keep = args.servers.split(",")
        for s in scenarios:
            s.servers = tuple(n for n in s.servers if n in keep)
    if not FLOOR.exists():
        say(f"bench: {FLOOR} not found; the calibration loop is left out")
        for s in scenarios:
            s.servers = tuple(n for n in s.servers if n != "floor")
    if any(s.via_nginx for s in scenarios):
        need("nginx", "apt-get install -y nginx-light")
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench: needs 2 CPUs (server on CPU 0, load on CPU 1)")
    versions = install_peers()
    results: dict[str, dict[str, tuple[float, int, int, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="uisge-bench-") as tmpdir:
        tmp = Path(tmpdir)
        for scenario in scenarios:
            runs: dict[str, list[tuple[float, int, int, float]]] = {n: [] for n in scenario.servers}
            for r in range(args.rounds):
                for name in scenario.servers:
                    runs[name].append(measure(name, scenario, args.duration, tmp))
                    rps, errors, _, cpu = runs[name][-1]
                    say(f"{scenario.name:20} round {r + 1}: {name:9} {rps:10.0f} req/s  {cpu:7.1f} µs CPU/req  "
                        f"errors {errors}")
            results[scenario.name] = {n: median_run(v) for n, v in runs.items()}
    table = render(scenarios, results, versions, args)
    print(table)
    if args.write:
        write_readme(table)
    return 0


def median_run(runs: list[tuple[float, int, int, float]]) -> tuple[float, int, int, float]:
    rps = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[3] for r in runs)
    return rps, sum(r[1] for r in runs), sum(r[2] for r in runs), cpu


def render(scenarios, results, versions, args) -> str:
    cmd = "python bench/run.py" + "".join(f" --only {n}" for n in (args.only or [])) + \
        (f" --rounds {args.rounds}" if args.rounds != 3 else "") + \
        (f" --duration {args.duration:g}" if args.duration != 5.0 else "") + " --write"
    lines = [
        f"Made by `{cmd}` on {time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, uWSGI {versions['uWSGI']}, gunicorn {versions['gunicorn']}, "
        f"granian {versions['granian']}, uvicorn {versions['uvicorn']} (uvloop {versions['uvloop']}). "
        f"Server on CPU 0, wrk (and nginx) on CPU 1; median of "
        f"{args.rounds} runs of {args.duration:g} s each.",
        "",
    ]
    for scenario in scenarios:
        res = results[scenario.name]
        us = scenario.servers[0]  # uisge, or its variant the scenario is about (uisge-asgi, uisge-stats)
        ours, ours_cpu = res.get(us, (0.0, 0, 0, 0.0))[0], res.get(us, (0.0, 0, 0, 0.0))[3]
        lines += [f"**{scenario.title}**", "",
                  "| server | requests/s | uisge req/s is | server CPU per request | uisge CPU is | errors |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name in scenario.servers:
            rps, errors, total, cpu = res[name]
            ratio = "" if name == us or not rps or not ours else f"{ours / rps:.2f}x"
            cpu_ratio = "" if name == us or not cpu or not ours_cpu else f"{ours_cpu / cpu:.2f}x"
            err = f"{errors}/{total}" if errors else "0"
            lines.append(f"| {name} | {rps:,.0f} | {ratio} | {cpu:.1f} µs | {cpu_ratio} | {err} |")
        lines.append("")
    cpu_rows = [(title, name) for title, name in (
        ("nginx `uwsgi_pass` unix socket, log off", "nginx-uwsgi"), ("nginx `uwsgi_pass` unix socket, log on", "nginx-uwsgi-log"),
        ("HTTP `Connection: close`, log off", "hello-close"), ("HTTP `Connection: close`, log on", "hello-close-log"),
        ("HTTP keep-alive, log off", "hello-keepalive"), ("HTTP keep-alive, log on", "hello-keepalive-log"))
        if name in results and "uwsgi" in results[name]]
    if cpu_rows:
        lines += ["**Server CPU per request (user+sys of the server's process tree / requests), against uWSGI**", "",
                  "| path | uWSGI | minimal pure-Python loop | uisge |", "|---|---:|---:|---:|"]
        for title, name in cpu_rows:
            res = results[name]
            base = res["uwsgi"][3]

            def cell(server: str) -> str:
                if server not in res or not res[server][3]:
                    return "-"
                return f"{res[server][3]:.1f} µs ({res[server][3] / base:.2f}x)" if base else f"{res[server][3]:.1f} µs"
            lines.append(f"| {title} | {base:.1f} µs | {cell('floor')} | {cell('uisge')} |")
        lines.append("")
    if "hello-keepalive" in results and "hello-keepalive-log" in results:
        off = results["hello-keepalive"]
        on = results["hello-keepalive-log"]
        for name in ("uisge", "uwsgi"):
            if off[name][0] and on[name][0]:
                lines.append(f"- request log cost, {name}: {100 * (1 - on[name][0] / off[name][0]):.0f}% "
                             f"({off[name][0]:,.0f} -> {on[name][0]:,.0f} req/s)")
        lines.append("")
    if "stats-polled" in results:
        res = results["stats-polled"]
        off, on = res["uisge-stats"][0], res["uisge-stats-polled"][0]
        if off:
            lines.append(f"- stats polled every 100 ms: {100 * (on / off - 1):+.0f}% throughput "
                         f"({off:,.0f} -> {on:,.0f} req/s)")
            lines.append("")
    return "\n".join(lines)


def write_readme(table: str) -> None:
    readme = HERE / "README.md"
    text = readme.read_text()
    begin, end = text.index(MARK_BEGIN) + len(MARK_BEGIN), text.index(MARK_END)
    readme.write_text(text[:begin] + "\n" + table + "\n" + text[end:])
    say(f"bench: table written to {readme}")


if __name__ == "__main__":
    sys.exit(main())
