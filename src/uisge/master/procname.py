"""Process titles (`ps` shows `uisge master`, `uisge worker 3`), with procname-prefix, -prefix-spaced,
-append, procname-master and procname. Needs setproctitle (the [proctitle] extra); without it, titles
are left alone. Nothing else."""

from __future__ import annotations

try:
    from setproctitle import setproctitle
except ImportError:  # optional dependency
    setproctitle = None


def title(opts, role: str) -> str:
    if role == "master" and opts.procname_master:
        base = opts.procname_master
    elif role != "master" and opts.procname:
        base = opts.procname
    else:
        base = f"uisge {role}"
    prefix = (opts.procname_prefix or "") + (opts.procname_prefix_spaced + " " if opts.procname_prefix_spaced else "")
    return prefix + base + (opts.procname_append or "")


def set_title(opts, role: str) -> None:
    if setproctitle is not None:
        setproctitle(title(opts, role))


def set_raw_title(text: str) -> None:
    """`uwsgi.setprocname()`: exactly this title."""
    if setproctitle is not None:
        setproctitle(text)
    else:
        try:
            import ctypes

            ctypes.CDLL(None).prctl(15, text.encode()[:15], 0, 0, 0)  # PR_SET_NAME: at least `ps -o comm`
        except (OSError, AttributeError):
            pass
