"""How the corpus tests cut raw bytes: whole, one byte at a time, and in random pieces (seeded by length,
so a failure repeats)."""

from __future__ import annotations

import random


def chunkings(n: int, largest: int = 7):
    """(name, piece sizes or None for whole) for a raw request of n bytes."""
    rng = random.Random(n)
    yield "whole", None
    yield "bytes", [1] * n
    yield "random", [rng.randint(1, largest) for _ in range(n)]


def pieces_of(raw: bytes, sizes: list[int] | None) -> list[bytes]:
    """`raw` cut into pieces of these sizes (the rest in a last piece)."""
    if sizes is None:
        return [raw]
    out, pos = [], 0
    for size in sizes:
        if pos >= len(raw):
            break
        out.append(raw[pos:pos + size])
        pos += size
    if pos < len(raw):
        out.append(raw[pos:])
    return out
