"""The master's harakiri decision (pure) and the scoreboard records it reads."""

from uisge.master.harakiri import Stuck, grace, stuck_workers
from uisge.master.scoreboard import Board


def test_a_worker_is_stuck_only_past_deadline_plus_margin():
    records = [(101, 1, [(100.0, "GET /a")]), (102, 2, [(99.5, "GET /b")]), (103, 3, [])]
    assert stuck_workers(records, now=100.4, harakiri=2, margin=1.0) == []
    assert stuck_workers(records, now=100.5, harakiri=2, margin=1.0) == [Stuck(102, 2, "GET /b", 3.0)]
    assert [s.pid for s in stuck_workers(records, now=101.0, harakiri=2, margin=1.0)] == [101, 102]


def test_the_oldest_overdue_request_names_a_threaded_worker():
    records = [(7, 1, [(50.0, "GET /late"), (40.0, "GET /oldest"), (0.0, "")])]
    (stuck,) = stuck_workers(records, now=60.0, harakiri=5, margin=1.0)
    assert stuck.what == "GET /oldest" and stuck.running == 25.0


def test_grace_leaves_the_worker_its_own_graceful_timeout_first():
    assert grace(0) == 1.0
    assert grace(3) == 4.0
    assert grace(-1) == 1.0


def test_scoreboard_core_records_round_trip():
    board = Board(2, cores=3)
    writer = board.writer(1, wid=2)
    writer.app_begin(0, 10.0, b"GET /x")
    writer.app_begin(2, 20.0, b"POST /" + b"y" * 500)  # truncated to the record's size, never past it
    assert board.stuck(1, now=15.0) == [(10.0, "GET /x")]
    assert [d for d, _ in board.stuck(1, now=25.0)] == [10.0, 20.0]
    assert len(board.stuck(1, now=25.0)[1][1]) == 120
    writer.app_end(0)
    assert [d for d, _ in board.stuck(1, now=25.0)] == [20.0]
    assert board.stuck(0, now=25.0) == []  # the neighbour slot is untouched
    assert board.read(1)["wid"] == 2
    board.clear(1)
    assert board.stuck(1, now=25.0) == []
