"""The two servers every compatibility case runs on: real uWSGI 2.0.31 (built from PyPI into a scratch venv
once, cached beside the sdist) and uisge (a `uwsgi` shim that runs `python -m uisge`). A case takes the
`binary` fixture and asserts what uWSGI does; the suite running green on both is the comparison."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import UWSGI_VERSION


@dataclass(frozen=True)
class Binary:
    name: str  # "uwsgi" or "uisge"
    path: str  # an executable taking uWSGI's command line

    @property
    def banner(self) -> str:
        """How the server names itself in its log lines ("spawned uWSGI worker 1" / "spawned uisge worker 1")."""
        return "uWSGI" if self.name == "uwsgi" else "uisge"

    @property
    def env(self) -> dict[str, str]:
        """uWSGI's Python sees the test venv's packages (Flask, werkzeug), as `virtualenv =` would give it."""
        return {"PYTHONPATH": sysconfig.get_paths()["purelib"]} if self.name == "uwsgi" else {}

    def __str__(self) -> str:
        return self.name


def _cache() -> Path:
    return Path(os.environ.get("UISGE_TEST_CACHE", Path.home() / ".cache" / "uisge-tests"))


def build_uwsgi() -> Path:
    """pip-install uWSGI 2.0.31 (it compiles: about 20 s here) into a venv kept in the test cache, one per
    Python version; returns its `uwsgi` binary. Built with PCRE (scripts/test installs libpcre2-dev), as
    distributions build it: without it uWSGI silently ignores `static-expires-uri` and the routing options.
    pip's wheel cache is bypassed so that a wheel built without PCRE is never reused."""
    tag = sysconfig.get_config_var("py_version_nodot")
    venv = _cache() / f"uwsgi-{UWSGI_VERSION}-py{tag}"
    binary = venv / "bin" / "uwsgi"
    if binary.exists():
        return binary
    failure = ""
    for step in ([sys.executable, "-m", "venv", "--clear", str(venv)],
                 [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir",
                  f"uwsgi=={UWSGI_VERSION}"]):
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            failure = f"{' '.join(step)} failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
            break
    if failure or not binary.exists():
        message = f"could not build uWSGI {UWSGI_VERSION} to compare against (scripts/test installs gcc and " \
                  f"Python's headers): {failure}"
        if os.environ.get("UISGE_TESTS_STRICT"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def uwsgi_binary() -> Binary:
    return Binary("uwsgi", str(build_uwsgi()))


@pytest.fixture(scope="session")
def uisge_binary(tmp_path_factory) -> Binary:
    shim = tmp_path_factory.mktemp("uisge-bin") / "uwsgi"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m uisge \"$@\"\n")
    shim.chmod(0o755)
    return Binary("uisge", str(shim))


@pytest.fixture(params=["uwsgi", "uisge"])
def binary(request) -> Binary:
    return request.getfixturevalue(f"{request.param}_binary")
