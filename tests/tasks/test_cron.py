"""uWSGI cron syntax: -1 any, -N every N, day OR weekday, and clear refusals of crontab habits."""

import time

import pytest

from uisge.errors import UisgeError
from uisge.tasks.cron import parse_cron, parse_cron2


def at(text: str) -> time.struct_time:
    return time.strptime(text, "%Y-%m-%d %H:%M")


def test_fields_any_every_and_exact():
    rule = parse_cron("-5 3 -1 -1 -1 backup").rule
    assert rule.matches(at("2026-11-21 03:10")) and not rule.matches(at("2026-11-21 03:11"))
    assert not rule.matches(at("2026-11-21 04:10"))
    assert parse_cron("-1 -1 -1 -1 -1 x").rule.matches(at("2026-01-01 00:00"))


def test_day_and_weekday_are_ored_when_both_set():
    rule = parse_cron("0 0 1 -1 0 x").rule  # the 1st of the month, or a Sunday
    assert rule.matches(at("2026-11-01 00:00"))  # a Sunday and the 1st
    assert rule.matches(at("2026-11-22 00:00"))  # a Sunday
    assert rule.matches(at("2026-12-01 00:00"))  # a Tuesday, the 1st
    assert not rule.matches(at("2026-11-24 00:00"))
    assert parse_cron("0 0 -1 -1 7 x").rule.matches(at("2026-11-22 00:00"))  # 7 is Sunday too


def test_crontab_habits_are_refused_with_a_hint():
    with pytest.raises(UisgeError, match=r"write `-5` for `\*/5`"):
        parse_cron("*/5 * * * * x")
    with pytest.raises(UisgeError, match="outside 0..59"):
        parse_cron("61 -1 -1 -1 -1 x")
    with pytest.raises(UisgeError, match="MIN HOUR DAY MONTH WEEKDAY command"):
        parse_cron("-1 -1 -1")


def test_cron2_keys():
    job = parse_cron2("minute=-15,hour=2,unique=1,harakiri=60 /usr/bin/report --all")
    assert job.unique and job.harakiri == 60 and job.command == "/usr/bin/report --all"
    assert job.rule.minute == -15 and job.rule.hour == 2 and job.rule.day == -1
    with pytest.raises(UisgeError, match="unknown key 'minutes'"):
        parse_cron2("minutes=5 x")
