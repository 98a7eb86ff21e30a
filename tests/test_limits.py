"""limits.py: cpu-affinity's mapping (uWSGI's, core/utils.c) and when max-fd cannot be set."""

from __future__ import annotations

import resource

import pytest

from uisge.limits import affinity, fd_limit_problem


@pytest.mark.parametrize(("worker", "per_worker", "cpus", "expected"), [
    (1, 1, 4, [0]), (2, 1, 4, [1]), (4, 1, 4, [3]), (5, 1, 4, [0]),  # one each, wrapping around
    (1, 2, 4, [0, 1]), (2, 2, 4, [2, 3]), (3, 2, 4, [0, 1]),
    (2, 3, 4, [3, 0, 1]),  # a worker's CPUs wrap past the last one
    (1, 4, 2, [0, 1, 0, 1]),  # more than the machine has: uWSGI's loop names some twice (a set once applied)
    (7, 2, 3, [0, 1]),  # base 12 % 3
])
def test_cpu_affinity_maps_workers_as_uwsgi(worker, per_worker, cpus, expected):
    assert affinity(worker, per_worker, cpus) == expected


def test_max_fd_refused_when_it_cannot_be_honoured():
    assert fd_limit_problem(4096, 8192, root=False) is None  # under the hard limit: anybody
    assert fd_limit_problem(65536, 8192, root=True) is None  # root raises the hard limit
    assert "needs root" in fd_limit_problem(65536, 8192, root=False)
    assert "LimitNOFILE" in fd_limit_problem(65536, 8192, root=False)
    assert fd_limit_problem(1 << 20, resource.RLIM_INFINITY, root=False) is None
    assert "too few" in fd_limit_problem(8, 8192, root=True)
