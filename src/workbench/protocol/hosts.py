"""Remote hosts on the wire: the state of each host's link (docs/remote.md).

A session of a remote host is listed with its id namespaced as `HOST:ID` and a `host` key;
every method that names a session by `id` goes to the daemon that owns it.
"""

from typing import Literal, TypedDict

from workbench.protocol.method import Method

LinkState = Literal["connecting", "up", "down"]


class HostsParams(TypedDict):
    pass


class HostLink(TypedDict):
    """One configured host as the local daemon's link to it sees it (also the `host` event)."""

    name: str
    url: str
    state: LinkState
    error: str  # why the link is down (or last went down); "" when it never failed
    since: float  # when `state` began
    attempts: int  # failed connections since the link was last up
    version: str  # the remote workbench's version ("" until the first handshake)
    sessions: int  # sessions known on that host (the last listing, while down)
    pid: int | None  # the ssh process carrying the link


# Re-reads the hosts file (so `host add` / `host rm` apply at once) and lists the links.
HOSTS: Method[HostsParams, list[HostLink]] = Method("hosts", HostsParams)
