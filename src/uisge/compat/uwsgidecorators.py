"""`uwsgidecorators`, as apps import it (reference §7.3), written for uisge on top of its `uwsgi` module:
@postfork, @spool / @spoolforever / @spoolraw, @mulefunc, @signal, @timer, @mstimer, @rbtimer, @cron, @filemon,
@lock, @thread, @harakiri, @mule, @muleloop, @mulemsg, @farm.

Import fails without a master, as in uWSGI. On import it installs `uwsgi.spooler`,
`uwsgi.post_fork_hook` and `uwsgi.mule_msg_hook`. Handlers registered at import time of a non-lazy
app are made in the master and so run once per interval in one process of the target; with
`lazy-apps` every worker registers them again, and the master keeps one timer per (signal, interval),
so the job still runs once per interval (uWSGI 2.0 would run it once per worker).
"""

from __future__ import annotations

import pickle
import threading
import traceback
from typing import Any, Callable

import uwsgi

if not uwsgi.masterpid():
    raise ImportError("you have to enable the uWSGI master process to use this module (set `master = true`)")

spooler_functions: dict[str, Callable] = {}
mule_functions: dict[str, Callable] = {}
postfork_chain: list[Callable] = []


def get_free_signal() -> int:
    for num in range(256):
        if not uwsgi.signal_registered(num):
            return num
    raise Exception("No free uwsgi signal available")


# ---------------------------------------------------------------- spooler
def _text(value: Any) -> Any:
    """A spooled value as uWSGI 2.0.31's uwsgidecorators gives it to the function: str (UTF-8). A value that
    is not UTF-8 (a binary body) stays bytes instead of failing the task forever."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def manage_spool_request(task: dict) -> int:
    keys = {_text(k): v for k, v in task.items()}
    pickled = {k: keys.pop(k) for k in ("args", "kwargs") if k in keys}  # pickles stay bytes
    text = {k: _text(v) for k, v in keys.items()}
    text.update(pickled)
    name = text.get("ud_spool_func")
    if name is None:
        return uwsgi.SPOOL_OK  # not ours
    function = spooler_functions.get(name)
    if function is None:
        uwsgi.log(f"[uwsgidecorators] spooled task for {name!r}, but no @spool function has that name in the "
                  f"spooler; the task stays queued")
        return uwsgi.SPOOL_RETRY
    return function.run_task(text)


class _spoolraw:
    result: Any = None

    def __init__(self, f: Callable, pass_arguments: bool) -> None:
        if "spooler" not in uwsgi.opt and "tasks-backend" not in uwsgi.opt:  # (a group's queue needs no local one)
            raise Exception(f"you have to enable the uWSGI spooler to use @{type(self).__name__} decorator "
                            f"(add `spooler = /path/to/dir`)")
        self.f = f
        self.pass_arguments = pass_arguments
        self.base = {"ud_spool_func": f.__name__}
        spooler_functions[f.__name__] = self
        f.spool = self.__call__

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        task = dict(self.base)
        if not self.pass_arguments:
            if args:
                task.update(args[0])
            task.update(kwargs)
        else:
            for key in ("spooler", "priority", "at", "body"):
                if key in kwargs:
                    task[key] = kwargs.pop(key)
            task["args"] = pickle.dumps(args)
            task["kwargs"] = pickle.dumps(kwargs)
        return uwsgi.spool(task)

    def spool(self, *args: Any, **kwargs: Any) -> bytes:
        return self(*args, **kwargs)

    def call(self, task: dict) -> Any:
        if self.pass_arguments:
            args = pickle.loads(task.pop("args"))
            kwargs = pickle.loads(task.pop("kwargs"))
            return self.f(*args, **kwargs)
        return self.f(task)

    def run_task(self, task: dict) -> Any:
        return self.call(task)


class _spool(_spoolraw):
    def run_task(self, task: dict) -> int:
        self.call(task)
        return uwsgi.SPOOL_OK


class _spoolforever(_spoolraw):
    def run_task(self, task: dict) -> int:
        self.call(task)
        return uwsgi.SPOOL_RETRY


def _spool_decorator(cls):
    def decorator(f: Callable | None = None, pass_arguments: bool = False):
        if f is not None:
            return cls(f, pass_arguments)
        return lambda g: cls(g, pass_arguments)
    return decorator


spool = _spool_decorator(_spool)
spoolforever = _spool_decorator(_spoolforever)
spoolraw = _spool_decorator(_spoolraw)


# ---------------------------------------------------------------- postfork
def postfork_chain_hook() -> None:
    for hook in postfork_chain:
        hook()


class postfork:
    def __init__(self, f: Callable | int) -> None:
        if callable(f):
            self.wid, self.f = 0, f
        else:
            self.wid, self.f = f, None
        postfork_chain.append(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.f is None:
            self.f = args[0]
            return self.f
        if self.wid > 0 and self.wid != uwsgi.worker_id():
            return None
        return self.f()


# ---------------------------------------------------------------- mules
def mule_msg_dispatcher(message: bytes) -> Any:
    msg = pickle.loads(message)
    if msg.get("service") == "uwsgi_mulefunc":
        return mule_functions[msg["func"]](*msg["args"], **msg["kwargs"])
    return None


class mulefunc:
    def __init__(self, f: Callable | int | str) -> None:
        if callable(f):
            self.fname, self.mule = f.__name__, 0
            mule_functions[f.__name__] = f
        else:
            self.fname, self.mule = None, f

    def real_call(self, *args: Any, **kwargs: Any) -> None:
        uwsgi.mule_msg(pickle.dumps({"service": "uwsgi_mulefunc", "func": self.fname, "args": args,
                                     "kwargs": kwargs}), self.mule)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.fname:
            self.fname = args[0].__name__
            mule_functions[self.fname] = args[0]
            return self.real_call
        return self.real_call(*args, **kwargs)


class mule_brain:
    def __init__(self, f: Callable, num: int) -> None:
        self.f, self.num = f, num

    def __call__(self) -> None:
        if uwsgi.mule_id() == self.num:
            try:
                self.f()
            except BaseException:
                traceback.print_exc()
                raise


class mule_brainloop(mule_brain):
    def __call__(self) -> None:
        if uwsgi.mule_id() == self.num:
            while True:
                try:
                    self.f()
                except Exception:  # noqa: BLE001
                    traceback.print_exc()


class mulemsg_loop(mule_brain):
    def __call__(self) -> None:
        if uwsgi.mule_id() == self.num:
            while True:
                self.f(uwsgi.mule_get_msg())


class mule:
    def __init__(self, num: int) -> None:
        self.num = num

    def __call__(self, f: Callable) -> Callable:
        postfork_chain.append(mule_brain(f, self.num))
        return f


class muleloop(mule):
    def __call__(self, f: Callable) -> Callable:
        postfork_chain.append(mule_brainloop(f, self.num))
        return f


class mulemsg(mule):
    def __call__(self, f: Callable) -> Callable:
        postfork_chain.append(mulemsg_loop(f, self.num))
        return f


class farm:
    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        self.name = name

    def __call__(self, f: Callable) -> Callable:
        def loop() -> None:
            if uwsgi.mule_id() and uwsgi.in_farm(self.name):
                while True:
                    message = uwsgi.mule_get_msg()
                    if message:
                        f(message)
        postfork_chain.append(loop)
        return f


# ---------------------------------------------------------------- signals, timers, crons
class signal:
    def __init__(self, num: int, **kwargs: Any) -> None:
        self.num = num
        self.target = kwargs.get("target", "")

    def __call__(self, f: Callable) -> Callable:
        uwsgi.register_signal(self.num, self.target, f)
        return f


class timer:
    def __init__(self, secs: float, **kwargs: Any) -> None:
        self.num = kwargs.get("signum", get_free_signal())
        self.secs = secs
        self.target = kwargs.get("target", "")

    def __call__(self, f: Callable) -> Callable:
        uwsgi.register_signal(self.num, self.target, f)
        uwsgi.add_timer(self.num, self.secs)
        return f


class mstimer(timer):
    """A timer in milliseconds (uWSGI's later uwsgidecorators; 2.0.31's has only whole seconds)."""

    def __call__(self, f: Callable) -> Callable:
        uwsgi.register_signal(self.num, self.target, f)
        uwsgi.add_ms_timer(self.num, self.secs)
        return f


class rbtimer(timer):
    def __init__(self, secs: float, **kwargs: Any) -> None:
        super().__init__(secs, **kwargs)
        self.iterations = kwargs.get("iterations", 0)

    def __call__(self, f: Callable) -> Callable:
        uwsgi.register_signal(self.num, self.target, f)
        uwsgi.add_rb_timer(self.num, self.secs, self.iterations)
        return f


class cron:
    def __init__(self, minute: int, hour: int, day: int, month: int, dayweek: int, **kwargs: Any) -> None:
        self.num = kwargs.get("signum", get_free_signal())
        self.rule = (minute, hour, day, month, dayweek)
        self.target = kwargs.get("target", "")

    def __call__(self, f: Callable) -> Callable:
        uwsgi.register_signal(self.num, self.target, f)
        uwsgi.add_cron(self.num, *self.rule)
        return f


class filemon:
    def __init__(self, fsobj: str, **kwargs: Any) -> None:
        self.num = kwargs.get("signum", get_free_signal())
        self.fsobj = fsobj
        self.target = kwargs.get("target", "")

    def __call__(self, f: Callable) -> Callable:
        uwsgi.register_signal(self.num, self.target, f)
        uwsgi.add_file_monitor(self.num, self.fsobj)
        return f


# ---------------------------------------------------------------- call wrappers
class lock:
    def __init__(self, f: Callable) -> None:
        self.f = f

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if uwsgi.i_am_the_spooler():  # as in uWSGI: the spooler may not lock, so it does not run the function
            return None
        uwsgi.lock()
        try:
            return self.f(*args, **kwargs)
        finally:
            uwsgi.unlock()


class thread:
    def __init__(self, f: Callable) -> None:
        self.f = f

    def __call__(self, *args: Any, **kwargs: Any) -> Callable:
        t = threading.Thread(target=self.f, args=args, kwargs=kwargs, daemon=True)
        t.start()
        return self.f


class harakiri:
    def __init__(self, seconds: int) -> None:
        self.seconds = seconds

    def __call__(self, f: Callable) -> Callable:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            uwsgi.set_user_harakiri(self.seconds)
            try:
                return f(*args, **kwargs)
            finally:
                uwsgi.set_user_harakiri(0)
        wrapped.__name__ = f.__name__
        return wrapped


uwsgi.spooler = manage_spool_request
uwsgi.post_fork_hook = postfork_chain_hook
uwsgi.mule_msg_hook = mule_msg_dispatcher
# no __all__, as uWSGI's module: `from uwsgidecorators import *` gives `uwsgi` too (tests/mulefunc.py)
