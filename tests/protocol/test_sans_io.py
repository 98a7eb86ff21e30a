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
