"""House rule 1: protocol code is sans-IO (no socket, os, select or time imports)."""

import ast
from pathlib import Path

PROTOCOL = Path(__file__).resolve().parents[2] / "src/uisge/protocol"


def test_protocol_modules_import_no_io():
    for path in PROTOCOL.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            assert not set(names) & {"socket", "os", "select", "time", "selectors"}, (path.name, names)


def test_dot_segments_resolved_and_repeated_slashes_kept():
    from uisge.protocol.http import path_info, remove_dot_segments

    assert remove_dot_segments("/a//b/../c") == "/a//c"
    assert remove_dot_segments("/a/./b/.") == "/a/b/"
    assert remove_dot_segments("/../../x") == "/x"
    assert remove_dot_segments("/a/b/..") == "/a/"
    assert path_info(b"///keeping_slashes?q=1#frag") == ("///keeping_slashes", "q=1")
    assert path_info(b"/%2e%2e/etc") == ("/etc", "")
    assert path_info(b"http://example.org//x/../y?z") == ("//y", "z")
