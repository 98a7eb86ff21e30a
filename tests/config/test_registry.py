"""The registry is complete for the seeds and the reference, and docs/options.md is generated from it."""

from pathlib import Path

from uisge.config.registry import REGISTRY, Status
from uisge.config.report import deviations_markdown, options_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_issue_aliases():
    for a, b in [("processes", "workers"), ("socket", "uwsgi-socket"), ("home", "virtualenv"), ("home", "venv"),
                 ("home", "pyhome"), ("module", "wsgi"), ("wsgi-file", "file"), ("log-format", "logformat"),
                 ("stats", "stats-server"), ("py-autoreload", "py-auto-reload")]:
        assert REGISTRY[a] is REGISTRY[b], (a, b)


def test_every_seed_key_is_declared():
    import re

    keys = set()
    for path in (ROOT / "tests/fixtures/seeds").iterdir():
        for m in re.finditer(r"^\s*([a-z][a-z0-9-]+)\s*=", path.read_text(), re.M):
            keys.add(m.group(1))
        for m in re.finditer(r"--([a-z][a-z0-9-]+)", path.read_text()):
            keys.add(m.group(1))
    unknown = sorted(k for k in keys if REGISTRY.get(k) is None and k not in ("project", "base", "work"))
    assert unknown == []


def test_every_option_has_help_and_status_reason():
    for option in REGISTRY.options:
        assert option.help.strip(), option.name
        if option.status in (Status.IGNORED, Status.REFUSED):
            assert option.reason, option.name
        if option.status is Status.PLANNED:
            assert option.issue, option.name


def test_options_md_is_up_to_date():
    current = (ROOT / "docs/options.md").read_text(encoding="utf-8")
    assert current == options_markdown(), "docs/options.md is stale: run `python -m uisge.config.report > docs/options.md`"


def test_deviations_md_is_up_to_date():
    current = (ROOT / "docs/deviations.md").read_text(encoding="utf-8")
    assert current == deviations_markdown(), (
        "docs/deviations.md is stale: run `python -m uisge.config.report deviations > docs/deviations.md`")


def test_options_uisge_cannot_honour_are_refused_at_load_with_what_to_do():
    import pytest

    from uisge.config.load import ConfigError, load

    for args, words in [(["--optimize", "1"], "python -O -m uisge"), (["--ksm"], "MADV_MERGEABLE"),
                        (["--memory-limit", "100"], "reload-on-rss")]:
        with pytest.raises(ConfigError) as info:
            load(args, first_index=0)
        assert f"`{args[0][2:]}` is not supported by uisge" in str(info.value) and words in str(info.value)
