"""uisge top's rows (src/uisge/top.py): one line per worker from the stats JSON, RPS from the change since the
previous read, open websockets in the last column. (The curses screen is driven in tmux by
tests/integration/test_stats.py.)"""

from uisge.top import COLUMNS, rows


def test_rows_give_rps_and_websockets_under_their_columns():
    before = {"workers": [{"id": 1, "requests": 100}]}
    now = {"version": "uisge-0.1", "pid": 7, "listen_queue": 3,
           "workers": [{"id": 1, "pid": 42, "requests": 150, "status": "busy", "avg_rt": 2500, "rss": 30 << 20,
                        "exceptions": 1, "harakiri_count": 2, "respawn_count": 1, "websockets": 200}]}
    header, lines = rows(now, before, 2.0)
    assert "requests: 150" in header and "RPS: 25.0" in header and "listen queue: 3" in header
    assert lines[0].split() == ["1", "42", "150", "25.0", "busy", "2.50", "30M", "1", "2", "1", "200"]
    assert len(lines[0]) == len(COLUMNS) and lines[0].endswith("200") and COLUMNS.endswith("WS")
