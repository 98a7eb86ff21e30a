"""Converters keep uWSGI's meanings (booleans above all) and explain bad values."""

import pytest

from uisge.config.convert import to_address, to_chmod, to_flag, to_int, to_map


@pytest.mark.parametrize("text,expected", [
    (None, True), ("", True), ("true", True), ("1", True), ("yes", True), ("on", True), ("nope", True),
    ("TRUE", True), ("false", False), ("FALSE", False), ("off", False), ("No", False), ("0", False),
    (" false ", False), ("00", True),
])
def test_booleans_exactly_as_uwsgi(text, expected):
    assert to_flag(text) is expected


def test_int():
    assert to_int("2048") == 2048
    with pytest.raises(ValueError, match="not a whole number"):
        to_int("2 # two")
    with pytest.raises(ValueError, match="negative"):
        to_int("-1")


@pytest.mark.parametrize("text,family,host,port", [
    (":9898", "inet", "0.0.0.0", 9898), ("0.0.0.0:8001", "inet", "0.0.0.0", 8001),
    ("127.0.0.1:0", "inet", "127.0.0.1", 0), ("[::]:8000", "inet6", "::", 8000), ("*:80", "inet", "0.0.0.0", 80),
])
def test_tcp_addresses(text, family, host, port):
    addr = to_address(text)
    assert (addr.family, addr.host, addr.port) == (family, host, port)


def test_unix_and_bad_addresses():
    assert to_address("/run/uwsgi/app.sock").family == "unix"
    assert to_address("./uwsgi/uwsgi.sock").path == "./uwsgi/uwsgi.sock"
    with pytest.raises(ValueError, match=r"write :60 for port 60.*http-timeout"):
        to_address("60")  # seed 000: `http-socket=60  # 60秒超时时间`
    with pytest.raises(ValueError, match="port"):
        to_address("host:99999")
    with pytest.raises(ValueError, match="brackets"):
        to_address("::1:80")


def test_chmod_and_map():
    assert to_chmod(None) == 0o666
    assert to_chmod("664") == 0o664
    with pytest.raises(ValueError, match="three octal digits"):
        to_chmod("0664x")
    assert to_map("/static/=/var/static/") == ("/static/", "/var/static/")
    with pytest.raises(ValueError, match="must start with '/'"):
        to_map("static=/var/static")
