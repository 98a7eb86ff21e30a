"""The `uwsgi` module apps import (reference §7.1), importable only inside a uisge process, as with
uWSGI. Values have uWSGI's Python 3 types: `opt` values, `version` and `hostname` are bytes, cache
values are bytes, the spooler receives a dict of bytes.

Every call works through `uisge.tasks.runtime.RT`, which knows which process this is. A uWSGI
function uisge does not offer raises NotImplementedError naming it; a name uWSGI never had raises
AttributeError. This module must not do anything at import time beyond reading the runtime.
"""

from __future__ import annotations

import os
import signal as _signal
import socket as _socket
import time as _time
from typing import Any, Callable

from uisge import __version__ as _uisge_version
from uisge.tasks import cron as _cron
from uisge.tasks import spooler as _spooler
from uisge.tasks.runtime import RT as _RT
from uisge.tasks.runtime import say as _say

SPOOL_OK = _spooler.SPOOL_OK
SPOOL_RETRY = _spooler.SPOOL_RETRY
SPOOL_IGNORE = _spooler.SPOOL_IGNORE

version = b"2.0.31"
version_info = (2, 0, 31, 0, b"")
uisge_version = _uisge_version
hostname = _socket.gethostname().encode()
started_on = _RT.started_on
unbit = False
magic_table: dict = {}
applications = None
is_a_reload = bool(os.environ.get("UISGE_REEXEC"))
opt: dict[str, Any] = {}
numproc = 1
cores = 1
has_threads = False
buffer_size = 4096
spoolers: tuple = ()
sockets: list[int] = []
loop = None
spooler: Callable | None = None  # the app (or uwsgidecorators) sets the spooler function here
post_fork_hook: Callable | None = None
mule_msg_hook: Callable | None = None
after_req_hook: Callable | None = None


def _refresh() -> None:
    """Fill the module's attributes from the configuration (called by the server before the app loads)."""
    global opt, numproc, cores, has_threads, buffer_size, spoolers, started_on
    opts = _RT.opts
    values: dict[str, Any] = {}
    for entry in opts.entries:
        value = True if entry.value is None else entry.value.encode("utf-8", "surrogateescape")
        if entry.key in values:
            old = values[entry.key]
            values[entry.key] = (old if isinstance(old, list) else [old]) + [value]
        else:
            values[entry.key] = value
    opt = values
    numproc = max(1, opts.processes)
    cores = max(1, opts.threads)
    has_threads = opts.threads > 1 or bool(opts.enable_threads)
    buffer_size = opts.buffer_size
    spoolers = tuple(d.encode() for d in _RT.spooler_dirs)
    started_on = _RT.started_on


# ---------------------------------------------------------------- who am I
def ready() -> bool:
    """Whether the instance is up: the master has spawned its workers (True in every worker and mule)."""
    return _RT.ready


def worker_id() -> int:
    return _RT.worker_id


def mule_id() -> int:
    return _RT.mule_id


def masterpid() -> int:
    return _RT.masterpid


def i_am_the_spooler() -> bool:
    return _RT.role == "spooler"


def total_requests() -> int:
    return _RT.total_requests()


def workers() -> tuple:
    return _RT.workers_info()


def request_id() -> int:
    return _RT.request_count()


def setprocname(name: str) -> None:
    from uisge.master.procname import set_raw_title

    set_raw_title(name.decode() if isinstance(name, bytes) else str(name))


def mem() -> tuple[int, int]:
    from uisge.worker.health import memory

    size, rss = memory()
    return rss, size


def micros() -> int:
    return int(_time.time() * 1_000_000)


# ---------------------------------------------------------------- control
def reload() -> bool:
    """Gracefully reload the instance (SIGHUP to the master)."""
    if not _RT.masterpid:
        raise ValueError("uwsgi.reload() needs the master: set `master = true`")
    os.kill(_RT.masterpid, _signal.SIGHUP)
    return True


def stop() -> bool:
    """Stop the instance (SIGQUIT to the master, uWSGI's brutal stop)."""
    os.kill(_RT.masterpid or os.getpid(), _signal.SIGQUIT)
    return True


_user_harakiri: list = [None]


def set_user_harakiri(seconds: int) -> None:
    """Kill this process if the current job runs longer than `seconds` (0 cancels); the master respawns it."""
    import threading

    timer = _user_harakiri[0]
    if timer is not None:
        timer.cancel()
        _user_harakiri[0] = None
    if seconds and seconds > 0:
        def fire() -> None:
            _say(f"*** HARAKIRI ON {_RT.role} {_RT.worker_id or _RT.mule_id} (pid: {os.getpid()}): user harakiri of "
                 f"{seconds} s expired; killing it ***")
            os.kill(os.getpid(), _signal.SIGKILL)

        timer = threading.Timer(seconds, fire)
        timer.daemon = True
        timer.start()
        _user_harakiri[0] = timer


# ---------------------------------------------------------------- logging
def log(message: Any) -> bool:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    _say(text)
    return True


def _logvars() -> dict:
    current = _RT.current
    env = getattr(current, "env", None) if current is not None else None
    if env is None:
        raise RuntimeError("uwsgi.set_logvar()/get_logvar() work only while a request is being served")
    return env.setdefault("uwsgi.logvars", {})


def sendfile(source: Any, chunk: int = 0, pos: int = 0, filesize: int = 0) -> Any:
    """uWSGI's uwsgi.sendfile(): a body for the current request, to be returned by the app, made of a file (a
    path, a descriptor or a file object) from `pos`, `filesize` bytes of it (0: to its end), read in `chunk`s
    when it cannot go out with sendfile()."""
    from uisge.wsgi.adapter import FileWrapper

    _logvars()  # (says so when called outside a request)
    if isinstance(source, (str, bytes)):
        source = open(source, "rb")
    elif isinstance(source, int):
        source = os.fdopen(os.dup(source), "rb")
    if pos:
        source.seek(pos)
    return FileWrapper(source, chunk if chunk > 0 else 65536, filesize if filesize > 0 else -1)


def log_this_request() -> None:
    """Log the current request's line even when `disable-logging` is on (uWSGI's log_this_request)."""
    _logvars()  # (says so when called outside a request)
    _RT.current.env["uwsgi.log_this"] = True


def set_logvar(key: Any, value: Any) -> None:
    _logvars()[key.decode() if isinstance(key, bytes) else str(key)] = (
        value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))


def get_logvar(key: Any) -> bytes | None:
    value = _logvars().get(key.decode() if isinstance(key, bytes) else str(key))
    return None if value is None else value.encode("utf-8")


# ---------------------------------------------------------------- signals
def register_signal(num: int, target: Any, handler: Callable) -> None:
    _RT.register(num, target.decode() if isinstance(target, bytes) else str(target or ""), handler)


def signal(num: int, remote: Any = None) -> None:
    if remote:
        raise NotImplementedError("uwsgi.signal() to a remote instance is not offered by uisge")
    _RT.raise_signal(num)


def signal_registered(num: int) -> bool:
    return num in _RT.handlers


def signal_received() -> int:
    return _RT.last_signal


def signal_wait(signum: int | None = None) -> None:
    """Block this worker until a uWSGI signal for it arrives (any worker's, or this one's), run its handler,
    and return (`signum`: wait for that one; others met meanwhile still run). In a worker only."""
    import select

    if _RT.role != "worker" or _RT.channels is None:
        raise NotImplementedError("uwsgi.signal_wait() is offered in workers (with a master) only by uisge")
    channel, control = _RT.channels["workers"], _RT.control
    while True:
        ready = select.select([channel, control] if control is not None else [channel], [], [])[0]
        got: list[int] = []
        if channel in ready:
            message = channel.receive()
            if message and message[:1] == b"s" and len(message) > 1:
                _RT.handle(message, waiting=True)
                got.append(message[1])
        if control is not None and control in ready:
            try:
                data = control.recv(64)
            except (BlockingIOError, InterruptedError):
                data = None
            if data == b"":
                return  # the master is gone
            left, at = bytearray(), 0
            while data and at < len(data):  # b"S" + number: a signal for this worker; the rest is the loop's
                if data[at:at + 1] == b"S" and at + 1 < len(data):
                    _RT.handle(b"s" + data[at + 1:at + 2], waiting=True)
                    got.append(data[at + 1])
                    at += 2
                else:
                    left += data[at:at + 1]
                    at += 1
            _RT.control_backlog += bytes(left)
        if got and (signum is None or signum in got):
            return


def add_timer(num: int, seconds: float) -> None:
    _RT.schedule({"op": "timer", "num": num, "secs": seconds})


def add_ms_timer(num: int, msecs: int) -> None:
    _RT.schedule({"op": "timer", "num": num, "secs": msecs / 1000})


def add_rb_timer(num: int, seconds: float, iterations: int = 0) -> None:
    _RT.schedule({"op": "rbtimer", "num": num, "secs": seconds, "iterations": iterations})


def add_cron(num: int, minute: int, hour: int, day: int, month: int, weekday: int) -> bool:
    _cron.rule(minute, hour, day, month, weekday)  # refuse a bad rule here, where the caller sees it
    _RT.schedule({"op": "cron", "num": num, "rule": [minute, hour, day, month, weekday]})
    return True


def add_file_monitor(num: int, path: Any) -> None:
    path = path.decode() if isinstance(path, bytes) else str(path)
    _RT.schedule({"op": "filemon", "num": num, "path": os.path.abspath(path)})


# ---------------------------------------------------------------- spooler
def spool(*args: dict, **kwargs: Any) -> bytes:
    """Queue a task; returns its file name (bytes) once the task is safely on disk."""
    task: dict = {}
    for arg in args:
        if not isinstance(arg, dict):
            raise TypeError(f"uwsgi.spool() takes a dict or keyword arguments, got {type(arg).__name__}")
        task.update(arg)
    task.update(kwargs)
    backend = _RT.opts.tasks_backend if _RT.opts else None
    if backend:  # the group's queue in Redis: any instance's spooler runs it (tasks/queue.py)
        import redis

        from uisge.tasks.group import redact
        from uisge.tasks.queue import describe, queue_for

        packet, priority, at, _ = _spooler.encode_task(task)
        try:
            name = describe(queue_for(backend).put(packet, priority, at))
        except redis.RedisError as exc:
            raise RuntimeError(f"uwsgi.spool(): the tasks-backend {redact(backend)} is unreachable ({exc}); the "
                               f"task was not queued") from None
        if not (_RT.opts and _RT.opts.spooler_quiet):
            _say(f"[spooler] queued {len(packet)} bytes as {name} in the tasks-backend")
        return name.encode()
    if not _RT.spooler_dirs:
        raise ValueError("uwsgi.spool(): no spooler is configured; add `spooler = /path/to/dir` (and `master = true`)")
    target = task.get("spooler")
    directory = _RT.spooler_dirs[0]
    if target:
        wanted = os.path.abspath(target.decode() if isinstance(target, bytes) else str(target))
        if wanted not in _RT.spooler_dirs:
            raise ValueError(f"uwsgi.spool(): spooler {wanted!r} is not configured (configured: "
                             f"{', '.join(_RT.spooler_dirs)})")
        directory = wanted
        task["spooler"] = wanted
    path = _spooler.write_task(directory, task, quiet=bool(_RT.opts.spooler_quiet) if _RT.opts else False)
    channel = (_RT.channels or {}).get(f"spooler:{directory}")
    if channel is not None:
        channel.send(b"w")
    return path.encode()


send_to_spooler = spool


def spooler_jobs() -> list[bytes]:
    backend = _RT.opts.tasks_backend if _RT.opts else None
    if backend:
        from uisge.tasks.queue import describe, queue_for

        return [describe(i).encode() for i in queue_for(backend).pending()]
    out = []
    for directory in _RT.spooler_dirs:
        out += [p.encode() for p in _spooler.pending(directory)]
    return out


def spooler_pid() -> int:
    return os.getpid() if _RT.role == "spooler" else 0


def spooler_dir() -> bytes | None:
    """In a spooler: the directory it runs (None elsewhere, as uWSGI)."""
    return _RT.spooler_directory.encode() if _RT.role == "spooler" and _RT.spooler_directory else None


def mule_file() -> bytes | None:
    """In a mule: the file or `module:function` it was given (None for an idle mule or elsewhere)."""
    if _RT.role != "mule" or _RT.opts is None:
        return None
    from uisge.tasks.instance import mules

    spec = dict(mules(_RT.opts)).get(_RT.mule_id)
    return spec.encode() if spec else None


def spooler_get_task(path: Any) -> dict | None:
    path = path.decode() if isinstance(path, bytes) else str(path)
    try:
        with open(path, "rb") as fh:
            return _spooler.read_task(fh.read(), path)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- mules
def _mule_channel(target: Any):
    channels = _RT.channels or {}
    if not _RT.mule_ids:
        raise ValueError("no mule configured: add `mule = ` (an idle mule) or `mules = N` to the config")
    if target is None or target == 0:
        return channels["mule0"]
    if isinstance(target, int):
        if target not in _RT.mule_ids:
            raise ValueError(f"mule {target} does not exist (mules: {', '.join(map(str, _RT.mule_ids))})")
        return channels[f"mule{target}"]
    name = target.decode() if isinstance(target, bytes) else str(target)
    if name not in _RT.farms:
        raise ValueError(f"farm {name!r} does not exist (farms: {', '.join(_RT.farms) or 'none'})")
    return channels[f"farm:{name}"]


def mule_msg(message: Any, target: Any = None) -> bool:
    data = message.encode() if isinstance(message, str) else bytes(message)
    if len(data) > 65536:
        raise ValueError(f"uwsgi.mule_msg(): {len(data)} bytes is more than a mule message holds (64 KiB)")
    channel = _mule_channel(target)
    if not channel.send(b"m" + data):
        _say(f"*** the mule queue {channel.name} is full: message of {len(data)} bytes dropped ***")
        return False
    return True


def farm_msg(farm: Any, message: Any) -> bool:
    return mule_msg(message, farm.decode() if isinstance(farm, bytes) else str(farm))


def mule_get_msg(signals: bool = True, farms: bool = True, buffer_size: int = 65536, timeout: int = -1) -> bytes:
    from uisge.tasks.mule import CURRENT

    if _RT.role != "mule" or not CURRENT:
        raise RuntimeError("uwsgi.mule_get_msg() can only be called in a mule")
    message = CURRENT[0].get(None if timeout is None or timeout < 0 else float(timeout))
    if message is None:
        raise SystemExit(0)
    return message


def farm_get_msg() -> bytes | None:
    from uisge.tasks.mule import CURRENT

    if _RT.role != "mule" or not CURRENT:
        raise RuntimeError("uwsgi.farm_get_msg() can only be called in a mule")
    return CURRENT[0].get(0.0, farms_only=True) or None


def in_farm(name: Any = None) -> bool:
    if _RT.role != "mule":
        return False
    if name is None:
        return any(_RT.mule_id in ids for ids in _RT.farms.values())
    name = name.decode() if isinstance(name, bytes) else str(name)
    return _RT.mule_id in _RT.farms.get(name, [])


# ---------------------------------------------------------------- locks
def _locks():
    if _RT.locks is None:
        raise ValueError("uwsgi locks exist only inside a uisge instance")
    return _RT.locks


def lock(num: int = 0) -> None:
    if _RT.role == "spooler":
        raise ValueError("the spooler cannot lock/unlock resources (as in uWSGI)")
    _locks().lock(num)


def unlock(num: int = 0) -> None:
    if _RT.role == "spooler":
        raise ValueError("the spooler cannot lock/unlock resources (as in uWSGI)")
    _locks().unlock(num)


def is_locked(num: int = 0) -> bool:
    return _locks().is_locked(num)


# ---------------------------------------------------------------- caches
def _cache(name: Any):
    if not _RT.caches:
        raise ValueError("no cache configured: add `cache2 = name=mycache,items=100` to the config")
    if name is None:
        return next(iter(_RT.caches.values()))
    name = name.decode() if isinstance(name, bytes) else str(name)
    if "@" in name:
        raise NotImplementedError(f"remote caches ({name}) are not offered by uisge")
    try:
        return _RT.caches[name]
    except KeyError:
        raise ValueError(f"cache {name!r} does not exist (caches: {', '.join(_RT.caches)})") from None


def _b(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def cache_get(key: Any, cache: Any = None) -> bytes | None:
    return _cache(cache).get(_b(key))


def cache_set(key: Any, value: Any, expires: int = 0, cache: Any = None) -> bool | None:
    return _cache(cache).put(_b(key), _b(value), int(expires or 0), replace=False)


def cache_update(key: Any, value: Any, expires: int = 0, cache: Any = None) -> bool | None:
    return _cache(cache).put(_b(key), _b(value), int(expires or 0), replace=True)


def cache_del(key: Any, cache: Any = None) -> bool | None:
    return _cache(cache).delete(_b(key))


def cache_exists(key: Any, cache: Any = None) -> bool | None:
    return True if _cache(cache).get(_b(key)) is not None else None


cache_exist = cache_exists


def cache_clear(cache: Any = None) -> bool:
    _cache(cache).clear()
    return True


# ---------------------------------------------------------------- shared areas (tasks/sharedarea.py)
def _area(area_id: int):
    try:
        return _RT.sharedareas[area_id]
    except (IndexError, TypeError):
        raise ValueError(f"sharedarea {area_id!r} does not exist (configure it: `sharedarea = PAGES` or "
                         f"`sharedarea = size=BYTES`)") from None


def sharedarea_read(area_id: int, pos: int = 0, length: int = 0) -> bytes:
    return _area(area_id).read(pos, length)


def sharedarea_write(area_id: int, pos: int, data: Any) -> None:
    _area(area_id).write(pos, _b(data))


def _typed(bits: int):
    def read(area_id: int, pos: int) -> int:
        return _area(area_id).read_int(bits, pos)

    def write(area_id: int, pos: int, value: int) -> None:
        _area(area_id).write_int(bits, pos, int(value))

    def inc(area_id: int, pos: int, value: int = 1) -> None:
        _area(area_id).add_int(bits, pos, int(value))

    def dec(area_id: int, pos: int, value: int = 1) -> None:
        _area(area_id).add_int(bits, pos, -int(value))
    return read, write, inc, dec


sharedarea_read8, sharedarea_write8, _inc8, _dec8 = _typed(8)
sharedarea_read16, sharedarea_write16, _inc16, _dec16 = _typed(16)
sharedarea_read32, sharedarea_write32, sharedarea_inc32, sharedarea_dec32 = _typed(32)
sharedarea_read64, sharedarea_write64, sharedarea_inc64, sharedarea_dec64 = _typed(64)
sharedarea_readbyte, sharedarea_writebyte = sharedarea_read8, sharedarea_write8
sharedarea_readlong, sharedarea_writelong, sharedarea_inclong = sharedarea_read64, sharedarea_write64, sharedarea_inc64


def sharedarea_rlock(area_id: int) -> None:
    _area(area_id).lock(exclusive=False)


def sharedarea_wlock(area_id: int) -> None:
    _area(area_id).lock(exclusive=True)


def sharedarea_unlock(area_id: int) -> None:
    _area(area_id).unlock()


def sharedarea_memoryview(area_id: int) -> memoryview:
    return memoryview(_area(area_id).mem)


# ---------------------------------------------------------------- RPC (the local node)
_RPC: dict[bytes, tuple[Callable, int]] = {}
RPC_MAX = 64  # uWSGI's default rpc-max


def register_rpc(name: Any, func: Callable, argc: int = 0) -> bool:
    """A function other code calls by name with uwsgi.rpc(None, name, ...) or uwsgi.call(name, ...); registered
    at import (in the master) it is in every worker. Names are shorter than 255 bytes, as in uWSGI."""
    key = _b(name)
    if len(key) >= 255 or (key not in _RPC and len(_RPC) >= RPC_MAX) or not callable(func):
        raise ValueError("unable to register rpc function")
    _RPC[key] = (func, argc)
    return True


def rpc(node: Any, name: Any, *args: Any) -> bytes | None:
    """Call a registered RPC function. The local node only (None, "" or this instance): calling another uWSGI
    node over the network is not offered."""
    if node not in (None, "", b""):
        raise NotImplementedError(f"uwsgi.rpc() to node {node!r}: only local RPC (node None) is offered by uisge; "
                                  f"see docs/deviations.md")
    return call(name, *args)


def call(name: Any, *args: Any) -> bytes | None:
    """The local RPC call: arguments are bytes; the answer is the bytes the function returned (None when it
    returned nothing or something else, as uWSGI)."""
    entry = _RPC.get(_b(name))
    if entry is None or any(not isinstance(a, (bytes, bytearray)) for a in args) or len(args) > 255:
        raise ValueError("unable to call rpc function")
    result = entry[0](*[bytes(a) for a in args])
    if isinstance(result, str):
        result = result.encode("latin-1")
    return bytes(result) if isinstance(result, (bytes, bytearray)) and result else None


def rpc_list() -> tuple:
    return tuple(_RPC)


# ---------------------------------------------------------------- what is not offered
_NOT_OFFERED = {
    "websocket_handshake", "websocket_recv", "websocket_recv_nb", "websocket_send", "websocket_send_binary",
    "queue_get", "queue_set", "queue_push", "queue_pop", "queue_pull",
    "queue_last", "queue_slot", "queue_pull_slot", "metric_inc", "metric_dec", "metric_mul", "metric_div", "metric_get", "metric_set",
    "metric_set_max", "metric_set_min", "snmp_set_counter32", "snmp_set_gauge", "async_sleep", "async_connect",
    "suspend", "green_schedule", "wait_fd_read", "wait_fd_write", "ready_fd", "offload", "route",
    "cache_inc", "cache_dec", "cache_mul", "cache_div", "cache_num", "cache_keys", "alarm",
    "chunked_read", "chunked_read_nb", "connection_fd", "disconnect", "add_var", "cl",
    "embedded_data", "extract", "parsefile", "set_warning_message", "listen_queue",
    "accepting", "logsize", "connect", "send", "recv", "close", "is_connected", "set_spooler_frequency",
    "spooler_pids", "lord_scroll", "i_am_the_lord", "worker_id_by_pid",
}


def __getattr__(name: str) -> Any:
    if name in _NOT_OFFERED:
        def not_offered(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(f"uwsgi.{name}() is not offered by uisge; see docs/deviations.md")
        not_offered.__name__ = name
        return not_offered
    raise AttributeError(f"module 'uwsgi' has no attribute {name!r}")
