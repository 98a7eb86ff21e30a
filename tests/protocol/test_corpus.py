"""gunicorn's request corpus (shared/peer-corpus/gunicorn/requests.json) through our HTTP parser:
whole, one byte at a time, and in random chunks. `must` cases must match; `should` cases are
reported (and listed in KNOWN_SHOULD when we knowingly differ); `skip` cases are skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.protocol.chunks import chunkings, pieces_of
from uisge.protocol.events import END, Reject, RequestHead
from uisge.protocol.http import HttpParser
from uisge.wsgi.environ import http_environ

ROOT = Path(__file__).resolve().parents[2]
# a copy of shared/peer-corpus/gunicorn (MIT, LICENSE beside it), so the suite runs anywhere
CORPUS = ROOT / "tests/fixtures/peer-corpus/gunicorn/requests.json"
CASES = json.loads(CORPUS.read_text())["cases"]


class Finished:
    """A request whose END arrived: its environ (as the app would see it) and its body."""

    def __init__(self, head: RequestHead, body: bytes) -> None:
        self.env = http_environ({}, "", "", head, False, False)
        self.body = [body]


def collect(parser, pieces) -> tuple[list[Finished], Reject | None]:
    """Feed the pieces; the requests completed (END seen) and the rejection, if any."""
    done: list[Finished] = []
    head, body = None, []
    for piece in pieces:
        for ev in parser.feed(piece):
            if ev.__class__ is RequestHead:
                head, body = ev, []
            elif ev.__class__ is bytes:
                body.append(ev)
            elif ev is END:
                done.append(Finished(head, b"".join(body)))
                head = None
            elif ev.__class__ is Reject:
                return done, ev
    return done, None


def parse(raw: bytes, chunks: list[int] | None):
    return collect(HttpParser(max_head=65535), pieces_of(raw, chunks))


def outcome(case, chunks):
    raw = case["raw"].encode("latin-1")
    done, error = parse(raw, chunks)
    expect = case.get("expect") or []
    if error is not None or len(done) < len(expect) or not done:
        return "reject", error  # nothing incomplete is ever dispatched
    for req, exp in zip(done, expect):
        env = req.env
        got = {
            "method": env["REQUEST_METHOD"],
            "target": env["REQUEST_URI"],
            "version": env["SERVER_PROTOCOL"],
            "headers": {k: v for k, v in env.items() if k.startswith("HTTP_") or k in ("CONTENT_TYPE", "CONTENT_LENGTH")},
            "body": b"".join(req.body).decode("latin-1"),
        }
        if "path" in exp and "%" not in exp["path"] and "/." not in exp["path"]:
            got["path"] = env["PATH_INFO"]  # repeated slashes kept, as sent (valid/100)
        if "query" in exp:
            got["query"] = env["QUERY_STRING"]
        if "headers" in exp:
            exp = dict(exp, headers=cgi_headers(exp["headers"], env))
        for key in got:
            if key in exp and exp[key] != got[key]:
                return "mismatch", f"{key}: expected {exp[key]!r}, got {got[key]!r}"
    return "process", None


def cgi_headers(headers: list[list[str]], env: dict) -> dict[str, str]:
    """The environ keys a WSGI app should see for the corpus's expected header list: HTTP_* names,
    repeats joined with ", ", names with `_` left out (dropped by default)."""
    out: dict[str, str] = {}
    for name, value in headers:
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        out[key] = out[key] + ", " + value if key in out else value
    if "HTTP_TRANSFER_ENCODING" in out and "CONTENT_LENGTH" in env:
        out["CONTENT_LENGTH"] = env["CONTENT_LENGTH"]  # a de-chunked body gets its length
    return out


# `must` cases where llhttp is stricter than gunicorn and we keep it so (docs/deviations.md)
STRICTER = {
    "gunicorn/valid/013": "llhttp refuses whitespace around `;` in chunk extensions (BWS); rejected with 400",
}


def _ids(case):
    return case["id"]


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_corpus_case(case):
    if case["severity"] == "skip":
        pytest.skip(case.get("skip_reason", "skip in corpus"))
    if case["id"] in STRICTER:
        assert outcome(case, None)[0] == "reject"
        return
    for name, chunks in chunkings(len(case["raw"])):
        got, detail = outcome(case, chunks)
        ok = got in case["accept"]
        if not ok and case["severity"] == "should":
            pytest.xfail(f"{name}: {got} ({detail}); corpus says {case['accept']} (should)")
        assert ok, f"{name}: {got} ({detail}); corpus says {case['accept']}"
