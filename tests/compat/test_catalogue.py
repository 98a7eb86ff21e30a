"""The catalogue of uWSGI's t/ and tests/ (catalogue.py) covers every file of the sdist, names only cases that
exist, and docs/compat.md is made from it."""

from __future__ import annotations

from pathlib import Path

from tests.compat import catalogue, test_uwsgi_tests

DOC = Path(__file__).resolve().parents[2] / "docs" / "compat.md"


def test_every_file_of_t_and_tests_is_catalogued_once(uwsgi_source):
    files = sorted(str(p.relative_to(uwsgi_source)) for tree in ("t", "tests") for p in (uwsgi_source / tree).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith("uwsgi_spoolfile_"))
    assert len(files) > 150
    missing = [f for f in files if catalogue.row_for(f) is None]
    assert not missing, missing
    twice = [f for f in files if sum(row.covers(f) for row in catalogue.ROWS) > 1]
    assert not twice, twice


def test_every_pattern_matches_a_file(uwsgi_source):
    files = [str(p.relative_to(uwsgi_source)) for p in uwsgi_source.rglob("*") if p.is_file()]
    for row in catalogue.ROWS:
        for pattern in row.pattern.split():
            assert any(catalogue.Row(pattern, "").covers(f) for f in files), pattern


def test_every_case_named_exists_and_runs_on_both_servers():
    import inspect

    for row in catalogue.ROWS:
        if row.case:
            case = getattr(test_uwsgi_tests, row.case, None)
            assert case is not None, row.case
            params = inspect.signature(case).parameters
            assert "binary" in params or {"uwsgi_binary", "uisge_binary"} <= set(params), row.case


def test_docs_compat_md_is_fresh():
    assert DOC.read_text() == catalogue.render(), "run: python -m tests.compat.catalogue > docs/compat.md"


def test_uisge_passes_everything_uwsgi_passes():
    assert not catalogue.gaps()
