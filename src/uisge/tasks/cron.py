"""uWSGI cron rules (reference §7.6): five integers `MIN HOUR DAY MONTH WEEKDAY`, -1 any, -N every N
(the field modulo N is 0); weekday 0-6 with 7 also Sunday; when both day and weekday are set they
are OR-ed, otherwise every set field must match. `cron2` writes the same as `key=value` pairs.

Parsing and matching only: the master's scheduler decides when to run; nothing here runs anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from uisge.errors import UisgeError

FIELDS = ("minute", "hour", "day", "month", "week")
_RANGES = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12), "week": (0, 7)}


@dataclass(frozen=True)
class CronRule:
    minute: int = -1
    hour: int = -1
    day: int = -1
    month: int = -1
    week: int = -1

    def matches(self, when: time.struct_time) -> bool:
        def ok(rule: int, value: int) -> bool:
            if rule == -1:
                return True
            if rule < -1:
                return value % -rule == 0
            return rule == value

        weekday = (when.tm_wday + 1) % 7  # struct_time: Monday 0; cron: Sunday 0
        week_rule = 0 if self.week == 7 else self.week
        if not (ok(self.minute, when.tm_min) and ok(self.hour, when.tm_hour) and ok(self.month, when.tm_mon)):
            return False
        if self.day >= 0 and week_rule >= 0:
            return ok(self.day, when.tm_mday) or ok(week_rule, weekday)
        return ok(self.day, when.tm_mday) and ok(week_rule, weekday)


@dataclass(frozen=True)
class CronCommand:
    rule: CronRule
    command: str
    unique: bool = False
    harakiri: int = 0
    text: str = ""


def _number(field: str, text: str, spec: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UisgeError(f"invalid cron syntax in `{option} = {spec}`: {field} is {text!r}; uWSGI cron fields are "
                         f"integers: -1 for any, -N for every N (write `-5` for `*/5`, `-1` for `*`)") from None
    low, high = _RANGES[field]
    if value >= 0 and not low <= value <= high:
        raise UisgeError(f"invalid cron syntax in `{option} = {spec}`: {field} {value} is outside {low}..{high}")
    if value < -1 and -value > high + 1:
        raise UisgeError(f"invalid cron syntax in `{option} = {spec}`: every {-value} {field}s never matches")
    return value


def rule(minute: int, hour: int, day: int, month: int, week: int, spec: str = "", option: str = "add_cron") -> CronRule:
    values = [_number(f, str(v), spec or f"{minute} {hour} {day} {month} {week}", option)
              for f, v in zip(FIELDS, (minute, hour, day, month, week))]
    return CronRule(*values)


def parse_cron(spec: str, option: str = "cron", unique: bool = False, harakiri: int = 0) -> CronCommand:
    """`cron` / `unique-cron`: `MIN HOUR DAY MONTH WEEKDAY command`."""
    parts = spec.split(None, 5)
    if len(parts) < 6:
        raise UisgeError(f"invalid cron syntax in `{option} = {spec}`: expected `MIN HOUR DAY MONTH WEEKDAY "
                         f"command`, e.g. `{option} = -5 -1 -1 -1 -1 /usr/bin/backup` (every 5 minutes)")
    values = [_number(f, v, spec, option) for f, v in zip(FIELDS, parts[:5])]
    return CronCommand(CronRule(*values), parts[5], unique=unique, harakiri=harakiri, text=spec)


def parse_cron2(spec: str, harakiri: int = 0) -> CronCommand:
    """`cron2`: `minute=-5,hour=3,unique=1,harakiri=60 command` (missing fields are -1)."""
    keys, _, command = spec.strip().partition(" ")
    if not command.strip() or "=" not in keys:
        raise UisgeError(f"invalid cron2 syntax in `cron2 = {spec}`: expected `key=value,... command`, e.g. "
                         f"`cron2 = minute=-5,unique=1 /usr/bin/backup`")
    fields: dict[str, int] = {}
    unique = False
    for pair in keys.split(","):
        key, _, value = pair.partition("=")
        key = key.strip()
        if key in FIELDS:
            fields[key] = _number(key, value, spec, "cron2")
        elif key == "unique":
            unique = value.strip() not in ("0", "false", "")
        elif key == "harakiri":
            harakiri = int(value)
        elif key == "legion":
            raise UisgeError(f"`cron2 = {spec}`: legion crons are not supported by uisge (no legion subsystem)")
        else:
            raise UisgeError(f"invalid cron2 syntax in `cron2 = {spec}`: unknown key {key!r}; known: "
                             f"{', '.join(FIELDS)}, unique, harakiri")
    return CronCommand(CronRule(**fields), command.strip(), unique=unique, harakiri=harakiri, text=spec)
