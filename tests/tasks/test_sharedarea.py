"""Shared areas across real forked processes, their bounds, and their option (tasks/sharedarea.py)."""

import os

import pytest

from uisge.errors import UisgeError
from uisge.tasks.sharedarea import SharedArea, parse


def test_writes_are_seen_by_a_forked_process_and_inc_is_atomic_under_the_lock():
    area = SharedArea(64)
    area.write(0, b"hello")
    pid = os.fork()
    if pid == 0:
        ok = area.read(0, 5) == b"hello"
        for _ in range(1000):
            area.add_int(32, 8, 1)
        os._exit(0 if ok else 1)
    for _ in range(1000):
        area.add_int(32, 8, 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert area.read_int(32, 8) == 2000
    area.write_int(8, 20, 127)
    area.add_int(8, 20, 1)
    assert area.read_int(8, 20) == -128  # wraps as a C int8_t
    assert len(area.read(60)) == 4  # no length: to the end


def test_out_of_range_is_a_value_error_as_in_uwsgi():
    area = SharedArea(16)
    for call in (lambda: area.read(16), lambda: area.write(10, b"x" * 7), lambda: area.read_int(64, 9)):
        with pytest.raises(ValueError, match="error calling uwsgi_sharedarea_"):
            call()


def test_option_forms():
    assert parse("2") == 8192 and parse("size=100") == 100 and parse("pages=1") == 4096
    with pytest.raises(UisgeError, match="not offered"):
        parse("file=/tmp/x,size=10")


def test_wlock_held_across_calls_keeps_another_process_out():
    import fcntl

    area = SharedArea(16)
    area.lock(exclusive=True)  # uwsgi.sharedarea_wlock(0)
    area.write(0, b"x")  # the holder itself still reads and writes
    pid = os.fork()
    if pid == 0:
        try:
            fcntl.lockf(area.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
            os._exit(1)  # got it: the lock did not hold
        except OSError:
            os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    area.unlock()
    assert area.read(0, 1) == b"x"
