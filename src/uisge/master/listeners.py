"""Bind the listening sockets from `http`, `http-socket` and `socket` once, before any fork.

TCP `host:port` (IPv4/IPv6, port 0 auto-assigned), unix paths relative to `chdir` with `chmod-socket`
and `chown-socket`, abstract `@name`; the backlog is `listen`, clamped to net.core.somaxconn with a
warning. Returns what to tell the log; does not accept connections.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import stat

from uisge import logfile
from uisge.config.convert import Address
from uisge.errors import UisgeError
from uisge.master import pidfile


def somaxconn() -> int | None:
    try:
        with open("/proc/sys/net/core/somaxconn") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def _unix_owner(spec: str) -> tuple[int, int]:
    user, _, group = spec.partition(":")
    try:
        uid = int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
    except KeyError:
        raise UisgeError(f"chown-socket = {spec}: no user named {user!r} on this machine") from None
    gid = -1
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise UisgeError(f"chown-socket = {spec}: no group named {group!r} on this machine") from None
    return uid, gid


def bind(addr: Address, option: str, origin: str, backlog: int, opts) -> tuple[socket.socket, str]:
    """A listening socket for one address; errors name the option, the address and the fix."""
    try:
        if addr.family == "unix":
            path = addr.path
            abstract = path.startswith("@") or opts.abstract_socket
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if abstract:
                sock.bind("\0" + path.lstrip("@"))
                name = "@" + path.lstrip("@")
            else:
                directory = os.path.dirname(path) or "."
                if not os.path.isdir(directory):
                    raise UisgeError(f"{option} = {addr.text} ({origin}): directory {directory!r} does not exist; "
                                     f"create it (e.g. `mkdir -p {directory}`)")
                if os.path.exists(path):
                    if stat.S_ISSOCK(os.stat(path).st_mode):
                        os.unlink(path)  # a stale socket from a previous run
                    else:
                        raise UisgeError(f"{option} = {addr.text} ({origin}): {path} exists and is not a socket")
                sock.bind(path)
                if opts.chmod_socket is not None:
                    os.chmod(path, opts.chmod_socket)
                if opts.chown_socket:
                    uid, gid = _unix_owner(opts.chown_socket)
                    os.chown(path, uid, gid)
                name = path
        else:
            family = socket.AF_INET6 if addr.family == "inet6" else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if opts.reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            # accepted connections inherit it on Linux: responses go out at once, without a setsockopt each
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if opts.so_keepalive:  # accepted connections inherit it: dead peers are found by TCP probes
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if not opts.undeferred_accept:
                # as uWSGI: a connection is handed to a worker only once its request starts to arrive (or
                # after socket-timeout), so a worker never holds a silent connection behind a long app call
                # while its neighbours idle, and connect-only clients cost no worker anything
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, max(1, opts.socket_timeout or 4))
            sock.bind((addr.host, addr.port))
            host, port = sock.getsockname()[:2]
            name = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        sock.listen(backlog)
    except PermissionError as exc:
        raise UisgeError(f"{option} = {addr.text} ({origin}): permission denied ({exc.strerror}); ports below "
                         f"1024 need root (uisge binds, then drops to `uid`), and unix sockets need a writable "
                         f"directory") from None
    except OSError as exc:
        raise UisgeError(f"{option} = {addr.text} ({origin}): cannot bind: {exc.strerror or exc}") from None
    return sock, name


def vacuum(opts, listeners: list) -> None:
    """`vacuum`: remove our pidfiles and unix socket files on the way out."""
    if not opts.vacuum:
        return
    for path in (opts.pidfile, opts.pidfile2):
        if path:
            pidfile.remove(path, os.getpid())
    for listener in listeners:
        if listener.path:
            try:
                os.unlink(listener.path)
            except OSError:
                pass
    logfile.say("vacuum: removed the pidfile and unix sockets")
