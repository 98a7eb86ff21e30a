"""`uisge top ADDRESS`: a live terminal view of a stats server (ours or uWSGI's), refreshed every
second: one row per worker (requests, RPS, status, average time, RSS) and a total line. `q` quits.

ADDRESS is what `stats` was set to (`host:port`, `:port`, a unix socket path, `@abstract`) or an
`http://` URL of a `stats-http` server. Reads only; needs a terminal (curses).
"""

from __future__ import annotations

import curses
import json
import socket
import sys
import time
import urllib.request

from uisge.config.convert import to_address


def fetch(address: str) -> dict:
    if address.startswith(("http://", "https://")):
        with urllib.request.urlopen(address, timeout=5) as resp:
            return json.loads(resp.read())
    addr = to_address(address)
    if addr.family == "unix":
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(5)
        sock.connect("\0" + addr.path[1:] if addr.path.startswith("@") else addr.path)
    else:
        sock = socket.create_connection((addr.host or "127.0.0.1", addr.port), timeout=5)
    data = b""
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data)


def _size(n: float) -> str:
    for unit in ("B", "K", "M", "G"):
        if n < 1024:
            return f"{n:.0f}{unit}"
        n /= 1024
    return f"{n:.0f}T"


def rows(stats: dict, before: dict | None, elapsed: float) -> tuple[str, list[str]]:
    """The header line and one line per worker; RPS from the change since `before`."""
    previous = {w["id"]: w["requests"] for w in (before or {}).get("workers", [])}
    lines = []
    total_rps = 0.0
    for w in stats.get("workers", []):
        rps = (w["requests"] - previous.get(w["id"], w["requests"])) / elapsed if before and elapsed > 0 else 0.0
        total_rps += max(rps, 0.0)
        lines.append(f"{w['id']:>3} {w['pid']:>8} {w['requests']:>10} {rps:>8.1f} {w['status']:>7} "
                     f"{w.get('avg_rt', 0) / 1000:>9.2f} {_size(w.get('rss', 0)):>7} {w.get('exceptions', 0):>6} "
                     f"{w.get('harakiri_count', 0):>4} {w.get('respawn_count', 0):>4} {w.get('websockets', 0):>5}")
    total = sum(w["requests"] for w in stats.get("workers", []))
    header = (f"{stats.get('version', '?')} - pid {stats.get('pid', '?')} - {time.strftime('%H:%M:%S')} - "
              f"requests: {total} - RPS: {total_rps:.1f} - listen queue: {stats.get('listen_queue', 0)}")
    return header, lines


# (title, width) of each column, as rows() formats them
WIDTHS = (("WID", 3), ("PID", 8), ("REQUESTS", 10), ("RPS", 8), ("STATUS", 7), ("AVG(ms)", 9), ("RSS", 7),
          ("EXC", 6), ("HAR", 4), ("RESP", 4), ("WS", 5))
COLUMNS = " ".join(title.rjust(width) for title, width in WIDTHS)


def _loop(screen, address: str) -> None:
    curses.curs_set(0)
    screen.timeout(1000)
    before, before_at = None, time.monotonic()
    while True:
        try:
            stats = fetch(address)
            now = time.monotonic()
            header, lines = rows(stats, before, now - before_at)
            before, before_at = stats, now
            error = ""
        except (OSError, ValueError) as exc:
            header, lines, error = f"uisge top {address}", [], f"cannot read the stats: {exc}"
        screen.erase()
        height, width = screen.getmaxyx()
        screen.addnstr(0, 0, header, width - 1, curses.A_BOLD)
        screen.addnstr(2, 0, error or COLUMNS, width - 1, curses.A_REVERSE if not error else 0)
        for i, line in enumerate(lines[: max(0, height - 4)]):
            screen.addnstr(3 + i, 0, line, width - 1, curses.A_BOLD if " busy " in line else 0)
        screen.refresh()
        if screen.getch() in (ord("q"), ord("Q")):
            return


def main(args: list[str]) -> int:
    if len(args) != 1 or args[0].startswith("-"):
        sys.stderr.write("usage: uisge top ADDRESS   (the `stats` address: host:port, a socket path, or http://...)\n")
        return 1
    try:
        fetch(args[0])
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"uisge top: cannot read stats from {args[0]}: {exc}; is `stats = {args[0]}` set?\n")
        return 1
    if not sys.stdout.isatty():
        header, lines = rows(fetch(args[0]), None, 1.0)
        sys.stdout.write("\n".join([header, COLUMNS, *lines]) + "\n")
        return 0
    curses.wrapper(_loop, args[0])
    return 0
