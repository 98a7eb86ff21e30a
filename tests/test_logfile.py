"""logfile.py: what uWSGI's `logger` / `req-logger` values mean to uisge, and the ones it refuses with a reason."""

from __future__ import annotations

import pytest

from uisge.config.load import load
from uisge.errors import UisgeError
from uisge.logfile import check_loggers, log_path, logger, maxsize


@pytest.mark.parametrize(("values", "expected"), [
    ((), (None, 0)),
    (("stdio",), (None, 0)),
    (("file:/var/log/app.log",), ("/var/log/app.log", 0)),
    (("file:logfile=/var/log/app.log,maxsize=2000000",), ("/var/log/app.log", 2000000)),
])
def test_logger_values_uisge_honours(values, expected):
    assert logger(values, "logger") == expected


@pytest.mark.parametrize(("values", "words"), [
    (("syslog",), "the syslog logger is not offered"),
    (("socket:127.0.0.1:1717",), "the socket logger is not offered"),
    (("mylog file:/tmp/x.log",), "named loggers feed log-route"),
    (("file:",), "needs a path"),
    (("file:logfile=/tmp/x,backupname=/tmp/y",), "`backupname=/tmp/y` is not something"),
    (("file:/tmp/a", "file:/tmp/b"), "uisge writes one log"),
])
def test_logger_values_refused_with_the_value_and_what_to_do(values, words):
    with pytest.raises(UisgeError) as info:
        logger(values, "logger")
    assert words in str(info.value) and values[-1] in str(info.value)


def test_req_logger_takes_no_maxsize():
    assert logger(("file:/tmp/req.log",), "req-logger") == ("/tmp/req.log", 0)
    with pytest.raises(UisgeError):
        logger(("file:logfile=/tmp/req.log,maxsize=10",), "req-logger")


def test_logger_file_is_the_log_file_with_its_maxsize():
    opts = load(["--logger", "file:logfile=/tmp/app.log,maxsize=5000"], first_index=0)
    check_loggers(opts)
    assert log_path(opts) == "/tmp/app.log" and maxsize(opts) == 5000
    opts = load(["--logger", "file:/tmp/app.log", "--log-maxsize", "7000"], first_index=0)
    assert maxsize(opts) == 7000


def test_logger_file_and_logto_both_naming_a_file_is_refused():
    opts = load(["--logger", "file:/tmp/a.log", "--logto", "/tmp/b.log"], first_index=0)
    with pytest.raises(UisgeError) as info:
        check_loggers(opts)
    assert "logto = /tmp/b.log" in str(info.value) and "keep one" in str(info.value)
