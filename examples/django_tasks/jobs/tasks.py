"""Background work through uwsgidecorators, exactly as it is written for uWSGI."""

import json
import os
import time

from django.conf import settings
from uwsgidecorators import cron, spool


def _append(name: str, record: dict) -> None:
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    with open(settings.VAR_DIR / name, "a") as fh:
        fh.write(json.dumps(record) + "\n")


@cron(-1, -1, -1, -1, -1, target="mule")  # every minute, in the mule: never holds a request slot
def clear_expired_sessions(signum):
    _append("cron.jsonl", {"job": "clear_expired_sessions", "at": time.time(), "pid": os.getpid()})


@spool(pass_arguments=True)
def generate_report(name, requested_at):
    time.sleep(0.2)  # the slow part a view must not wait for
    _append("reports.jsonl", {"report": name, "requested_at": requested_at, "done_at": time.time(),
                              "pid": os.getpid()})
