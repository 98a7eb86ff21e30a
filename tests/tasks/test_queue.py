"""tasks/queue.py's pure part: which band a priority runs in (the queue itself runs against a real
redis-server in tests/integration/test_group.py)."""

from uisge.tasks.queue import NO_PRIORITY, band


def test_priorities_run_lowest_number_first_and_unnumbered_last():
    assert band("0") < band("1") < band("42") < band(None) == NO_PRIORITY
    assert band("high") == NO_PRIORITY  # not a number: as uWSGI, which only scans numbered subdirectories
    assert band("100000") == NO_PRIORITY - 1  # clamped below the unnumbered band
