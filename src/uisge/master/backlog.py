"""How many connections wait in a listening socket's accept queue, and how many it may hold (Linux).

TCP sockets answer through TCP_INFO; unix sockets (nginx's uwsgi_pass, the common deployment) through a
sock_diag netlink query by inode (UNIX_DIAG_RQLEN). Read by the stats server, /metrics and cheaper's
backlog algorithms; read-only, and (0, 0) whenever the kernel will not say.
"""

from __future__ import annotations

import os
import socket
import struct

_U32 = struct.Struct("<I")  # tcp_info: tcpi_unacked at 24 (the queue), tcpi_sacked at 28 (the backlog)
_NLMSG = struct.Struct("<IHHII")  # nlmsghdr: len, type, flags, seq, pid
_UNIX_REQ = struct.Struct("<BBHIIIII")  # unix_diag_req: family, protocol, pad, states, ino, show, cookie[2]
_UNIX_MSG = struct.Struct("<BBBBIII")  # unix_diag_msg: family, type, state, pad, ino, cookie[2]
_RTA = struct.Struct("<HH")  # rtattr: len, type
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
TCP_LISTEN = 10
UDIAG_SHOW_RQLEN = 0x10
UNIX_DIAG_RQLEN = 4
NO_COOKIE = 0xFFFFFFFF


def listen_queue(sock: socket.socket) -> tuple[int, int]:
    """(connections waiting to be accepted, the most that may wait)."""
    if sock.family == socket.AF_UNIX:
        return _unix_queue(sock)
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return _U32.unpack_from(info, 24)[0], _U32.unpack_from(info, 28)[0]
    except OSError:
        return 0, 0


def _unix_queue(sock: socket.socket) -> tuple[int, int]:
    try:
        inode = os.fstat(sock.fileno()).st_ino
        request = _UNIX_REQ.pack(socket.AF_UNIX, 0, 0, 1 << TCP_LISTEN, inode, UDIAG_SHOW_RQLEN, NO_COOKIE,
                                 NO_COOKIE)
        message = _NLMSG.pack(_NLMSG.size + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0) + request
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1.0)
            nl.send(message)
            reply = nl.recv(8192)
    except OSError:
        return 0, 0
    return parse_unix_reply(reply)


def parse_unix_reply(reply: bytes) -> tuple[int, int]:
    """(rqueue, wqueue) from a sock_diag answer: for a listening unix socket, the accept queue and its size."""
    if len(reply) < _NLMSG.size:
        return 0, 0
    length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(reply, 0)
    if kind == NLMSG_ERROR or length > len(reply):
        return 0, 0
    pos = _NLMSG.size + _UNIX_MSG.size
    while pos + _RTA.size <= length:
        rta_len, rta_type = _RTA.unpack_from(reply, pos)
        if rta_len < _RTA.size:
            break
        if rta_type == UNIX_DIAG_RQLEN and rta_len >= _RTA.size + 8:
            return _U32.unpack_from(reply, pos + 4)[0], _U32.unpack_from(reply, pos + 8)[0]
        pos += (rta_len + 3) & ~3
    return 0, 0
