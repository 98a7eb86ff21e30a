"""Drop root after binding: `gid` (with the user's supplementary groups unless `no-initgroups`), then
`uid`. Names or numbers; errors name the option and the value. Nothing else changes identity."""

from __future__ import annotations

import grp
import os
import pwd

from uisge.errors import UisgeError


def _gid(spec: str, origin: str) -> int:
    if spec.isdigit():
        return int(spec)
    try:
        return grp.getgrnam(spec).gr_gid
    except KeyError:
        raise UisgeError(f"gid = {spec} ({origin}): no group named {spec!r} on this machine") from None


def _user(spec: str, origin: str) -> tuple[int, int, str | None]:
    try:
        entry = pwd.getpwuid(int(spec)) if spec.isdigit() else pwd.getpwnam(spec)
    except KeyError:
        if spec.isdigit():
            return int(spec), -1, None
        raise UisgeError(f"uid = {spec} ({origin}): no user named {spec!r} on this machine") from None
    return entry.pw_uid, entry.pw_gid, entry.pw_name


def drop(opts) -> list[str]:
    """Switch to `gid`/`uid`; returns the log lines saying what was done."""
    said: list[str] = []
    uid_spec, gid_spec = opts.uid, opts.gid
    if not uid_spec and not gid_spec:
        return said
    uid, user_gid, name = _user(uid_spec, opts.origin("uid")) if uid_spec else (-1, -1, None)
    gid = _gid(gid_spec, opts.origin("gid")) if gid_spec else user_gid
    if os.geteuid() != 0:
        if (uid in (-1, os.geteuid())) and (gid in (-1, os.getegid())):
            return said
        raise UisgeError(f"uid/gid set ({uid_spec or '-'}/{gid_spec or '-'}) but uisge is not running as root, "
                         f"so it cannot switch; start it as root or remove them")
    try:
        if gid >= 0:
            os.setgid(gid)
            if name and not opts.no_initgroups:
                os.initgroups(name, gid)
            else:
                os.setgroups([])
            said.append(f"setgid() to {gid}")
        if uid >= 0:
            os.setuid(uid)
            said.append(f"setuid() to {uid}")
    except OSError as exc:
        raise UisgeError(f"cannot drop privileges to uid={uid_spec} gid={gid_spec}: {exc.strerror or exc}") from None
    return said
