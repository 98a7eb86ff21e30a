"""Sets up, once per master (and again after its re-exec, from the carried state), what the `uwsgi`
module and the background processes share: spooler directories, mule ids and farms, the channels,
the user locks and the caches. Then makes `import uwsgi` / `import uwsgidecorators` work.

Runs before the app loads, so that decorators at import time find the master's runtime.
"""

from __future__ import annotations

import os

from uisge.errors import UisgeError
from uisge.tasks import cache, sharedarea
from uisge.tasks.channels import Channels
from uisge.tasks.locks import GroupLocks, Locks
from uisge.tasks.runtime import RT


def mules(opts) -> list[tuple[int, str]]:
    """(mule id, what it runs: '' idle, a file, or module:function), in uWSGI's numbering."""
    out = [(i + 1, (patch or "").strip()) for i, patch in enumerate(opts.mule)]
    out += [(len(out) + i + 1, "") for i in range(opts.mules or 0)]
    return out


def farms(opts, mule_ids: list[int]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for spec in opts.farm:
        name, _, ids = spec.partition(":")
        try:
            members = [int(i) for i in ids.split(",") if i.strip()]
        except ValueError:
            raise UisgeError(f"`farm = {spec}`: expected `NAME:MULE,MULE`, e.g. `farm = reports:1,2`") from None
        missing = [m for m in members if m not in mule_ids]
        if not name or not members or missing:
            raise UisgeError(f"`farm = {spec}`: " + (f"mule {missing[0]} does not exist (mules: "
                             f"{', '.join(map(str, mule_ids)) or 'none; add `mules = N`'})" if missing
                                                     else "expected `NAME:MULE,MULE`"))
        out[name] = members
    return out


def validate(opts) -> None:
    """Refuse bad cron, timer, daemon and cache specs before anything starts (each error names the value)."""
    from uisge.tasks import cron, daemons, scheduler

    for spec in opts.cron:
        cron.parse_cron(spec, "cron")
    for spec in opts.unique_cron:
        cron.parse_cron(spec, "unique-cron")
    for spec in opts.cron2:
        cron.parse_cron2(spec)
    for spec in opts.timer:
        scheduler._timer_option(spec)
    daemons.parse(opts)
    for spec in opts.cache2:
        cache.parse_cache2(spec)


def prepare(opts, carried: dict | None = None) -> None:
    from uisge import compat

    validate(opts)
    RT.opts = opts
    RT.role = "master" if opts.master else "single"
    RT.masterpid = os.getpid() if opts.master else 0
    RT.worker_id = 0 if opts.master else 1
    RT.spooler_dirs = []
    RT.external_spoolers = set()
    for option, directories in (("spooler", opts.spooler), ("spooler-external", opts.spooler_external)):
        for directory in directories:
            path = os.path.abspath(directory)
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as exc:
                raise UisgeError(f"spooler directory {path} cannot be created: {exc.strerror} (`{option} = "
                                 f"{directory}`, {opts.origin(option)})") from None
            if path not in RT.spooler_dirs:
                RT.spooler_dirs.append(path)
                if option == "spooler-external":
                    RT.external_spoolers.add(path)
    RT.mule_ids = [m for m, _ in mules(opts)]
    RT.farms = farms(opts, RT.mule_ids)
    carried = carried or {}
    if opts.master:
        if carried.get("channels"):
            RT.channels = Channels.from_state(carried["channels"])
        else:
            RT.channels = Channels()
            spoolers = [f"spooler:{d}" for d in RT.spooler_dirs if d not in RT.external_spoolers]
            for name in ["master", "workers", "mule0", *(f"mule{m}" for m in RT.mule_ids),
                         *(f"farm:{f}" for f in RT.farms), *spoolers]:
                RT.channels.add(name)
    # user locks work without a master too (forked workers inherit the memfd), as in uWSGI
    if opts.tasks_backend and opts.tasks_backend_locks:
        RT.locks = GroupLocks(opts.locks or 1, opts.tasks_backend, ttl=max(60.0, 2.0 * (opts.harakiri or 0)),
                              fd=carried.get("locks"))
    else:
        RT.locks = Locks(opts.locks or 1, fd=carried.get("locks"))
    RT.caches = cache.from_state(carried["caches"]) if carried.get("caches") else cache.from_options(opts)
    RT.sharedareas = (sharedarea.from_state(carried["sharedareas"]) if carried.get("sharedareas")
                      else sharedarea.from_options(opts))
    compat.install()


def state() -> dict:
    """What the re-exec'd master needs to keep talking to the processes that outlive the exec."""
    out: dict = {}
    if RT.channels is not None:
        out["channels"] = RT.channels.state()
    if RT.locks is not None:
        os.set_inheritable(RT.locks.fd, True)
        out["locks"] = RT.locks.fd
    if RT.caches:
        for c in RT.caches.values():
            os.set_inheritable(c.fd, True)
        out["caches"] = [c.spec() for c in RT.caches.values()]
    if RT.sharedareas:
        for area in RT.sharedareas:
            os.set_inheritable(area.fd, True)
        out["sharedareas"] = [area.spec() for area in RT.sharedareas]
    return out
