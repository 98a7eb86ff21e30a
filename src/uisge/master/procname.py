"""Process titles (`ps` shows `uisge master`, `uisge worker 3`; with auto-procname uWSGI's `uWSGI master`,
`uWSGI worker 3`, `uWSGI mule 1`, `uWSGI spooler`), with procname-prefix, -prefix-spaced, -append,
procname-master and procname. The whole title needs setproctitle (the [proctitle] extra); without it
only the 15-character process name (`ps -o comm`) changes. Nothing else."""

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
    elif opts.auto_procname:
        base = f"uWSGI {role}"  # uWSGI's own titles, so that `pgrep -f "uWSGI worker"` scripts keep working
    else:
        base = f"uisge {role}"
    prefix = (opts.procname_prefix or "") + (opts.procname_prefix_spaced + " " if opts.procname_prefix_spaced else "")
    return prefix + base + (opts.procname_append or "")


def set_title(opts, role: str) -> None:
    set_raw_title(title(opts, role))


def set_raw_title(text: str) -> None:
    """`uwsgi.setprocname()`: exactly this title (without setproctitle, only the 15-character name that
    `ps -o comm` and `pgrep` without -f see)."""
    if setproctitle is not None:
        setproctitle(text)
    else:
        try:
            import ctypes

            ctypes.CDLL(None).prctl(15, text.encode()[:15], 0, 0, 0)  # PR_SET_NAME: at least `ps -o comm`
        except (OSError, AttributeError):
            pass
