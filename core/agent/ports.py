"""Whether a TCP port is open in a vnode: Distem's ``wait_vnodes`` poll.

The connection is made from inside the vnode's own network namespace toward its
address, so that the poll sends nothing outside that namespace (the pnode needs no
route into the vnetworks) and answers "is a server listening on that port there".
"""

from __future__ import annotations

import socket

from pydistem.agent import netlink


def port_open(netns: str, address: str, port: int, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to ``address:port`` succeeds inside the namespace at
    ``netns``. Refused, unreachable or timed out: False. Never raises for the port."""
    with netlink.in_netns(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()
