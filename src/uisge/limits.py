"""Process limits and placement from the config, as uWSGI 2.0 applies them:

- `max-fd`: the open files limit (soft and hard), set once by the first process before it binds, forks
  or drops privileges (raising it needs root); every process inherits it;
- `cpu-affinity = N`: each worker pinned at its start to N CPUs, worker 1 to the first N, worker 2 to
  the next N, wrapping around the machine's CPUs (uWSGI's mapping, core/utils.c).

The decisions are pure functions; the two system calls are at the edges. Must not fork or read sockets.
"""

from __future__ import annotations

import os
import resource

from uisge.errors import UisgeError


def affinity(worker_id: int, per_worker: int, cpus: int) -> list[int]:
    """The CPUs of worker `worker_id` (1-based) with `per_worker` CPUs each on a machine of `cpus`."""
    base = (worker_id - 1) * per_worker
    if base >= cpus:
        base %= cpus
    chosen = []
    for _ in range(per_worker):
        if base >= cpus:
            base = 0
        chosen.append(base)
        base += 1
    return chosen


def pin_worker(per_worker: int, worker_id: int) -> str:
    """Pin this process (worker `worker_id`) as cpu-affinity says; the line to log."""
    cpus = affinity(worker_id, per_worker, os.cpu_count() or 1)
    try:
        os.sched_setaffinity(0, set(cpus))
    except OSError as exc:
        return f"cpu-affinity: could not pin worker {worker_id} to CPUs {cpus}: {exc.strerror}"
    return f"mapping worker {worker_id} to CPUs: {' '.join(map(str, cpus))}"


def fd_limit_problem(wanted: int, hard: int, root: bool) -> str | None:
    """Why max-fd = `wanted` cannot be set (None: it can)."""
    if wanted < 16:
        return f"{wanted} is too few for a server (its listeners, log and pipes alone need more); use 1024 or more"
    if wanted > hard and hard != resource.RLIM_INFINITY and not root:
        return (f"raising the open files limit above its hard limit ({hard}) needs root; start uisge as root "
                f"(it drops privileges after binding) or raise the limit where it is started (systemd's "
                f"LimitNOFILE=, ulimit -Hn)")
    return None


def set_fd_limit(wanted: int, origin: str) -> str:
    """Apply max-fd (soft and hard, as uWSGI sets them); the line to log, or UisgeError saying why not."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    problem = fd_limit_problem(wanted, hard, os.geteuid() == 0)
    if problem is None:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
        except (OSError, ValueError) as exc:
            problem = f"setrlimit() failed: {exc}"
    if problem:
        raise UisgeError(f"max-fd = {wanted} ({origin}): {problem}")
    return f"detected max file descriptor number: {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}"
