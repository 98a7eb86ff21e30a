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
