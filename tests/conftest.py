"""Shared test helpers: run the real `uisge` command in a subprocess, materialise seed fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = FIXTURES / "seeds"


def run_uisge(*args: str, cwd: str | os.PathLike | None = None, env: dict | None = None,
              timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "uisge", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def materialise(name: str, tmp_path: Path) -> Path:
    """Copy a seed fixture into tmp_path with @TMP@ pointing there; return its path."""
    text = (SEEDS / name).read_text(encoding="utf-8").replace("@TMP@", str(tmp_path))
    target = tmp_path / name
    target.write_text(text, encoding="utf-8")
    return target


@pytest.fixture
def uwsgi_shim(tmp_path: Path) -> dict:
    """A PATH where `uwsgi` runs `python -m uisge check`, to run seed command lines as written."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "uwsgi"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m uisge check \"$@\"\n")
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    return env


UWSGI_VERSION = "2.0.31"


@pytest.fixture(scope="session")
def uwsgi_source(tmp_path_factory) -> Path:
    """uWSGI's source tree (its t/ and tests/ and uwsgidecorators.py), downloaded from PyPI once and kept in
    ~/.cache/uisge-tests. GPL-2 material: fetched at test time, never copied into this repository."""
    cache = Path(os.environ.get("UISGE_TEST_CACHE", Path.home() / ".cache" / "uisge-tests"))
    tree = cache / f"uwsgi-{UWSGI_VERSION}"
    if (tree / "tests").is_dir():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    download = tmp_path_factory.mktemp("uwsgi-sdist")
    got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                          f"uwsgi=={UWSGI_VERSION}", "-d", str(download)], capture_output=True, text=True,
                         timeout=300)
    archives = list(download.glob("uwsgi-*.tar.gz"))
    if got.returncode != 0 or not archives:
        message = f"could not download the uWSGI {UWSGI_VERSION} sdist from PyPI: {got.stderr[-500:]}"
        if os.environ.get("UISGE_TESTS_STRICT"):
            pytest.fail(message)
        pytest.skip(message)
    import tarfile

    with tarfile.open(archives[0]) as tar:
        tar.extractall(cache, filter="data")
    return tree
