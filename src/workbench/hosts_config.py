"""Remote hosts (`workbench host add|ls|rm`): `hosts.toml` in the user's config directory,
and the OpenSSH command line that reaches one (docs/remote.md).

The system `ssh` is used, so `~/.ssh/config`, the agent, ProxyJump and ControlMaster apply
as they do for `ssh HOST`. What the command forbids (agent and X11 forwarding, every port
forward of the user's config) keeps the link one stream: nothing of either side's sockets
crosses it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from workbench import paths
from workbench.errors import ConfigError, UsageError

# A host name is the prefix of its sessions' ids (`NAME:ID`): no colon, nothing shell- or
# option-like; `local` names this machine.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
# A DNS name or an IPv4 address; never starting with `-` (ssh would read an option).
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
RESERVED = frozenset({"local"})
SERVER_ALIVE_S = 10  # with ServerAliveCountMax=3: a dead network is noticed within ~30 s
CONNECT_TIMEOUT_S = 15
INSTALL_HINT = ("install workbench there (`pipx install workbench`, or `pip install .` from a checkout), "
                "or give its path with `workbench host add NAME URL --workbench PATH`")


@dataclass(frozen=True)
class Host:
    name: str
    url: str
    hostname: str
    user: str | None = None
    port: int | None = None
    ssh_config: str | None = None  # handed to ssh as `-F FILE`
    workbench: str = "workbench"  # the command on the remote host

    def ssh_argv(self) -> list[str]:
        """`ssh ... HOST 'workbench daemon connect'`: one stream to the remote daemon."""
        argv = ["ssh", "-T", "-a", "-x", "-e", "none"]
        if self.ssh_config:
            argv += ["-F", self.ssh_config]
        argv += ["-o", "BatchMode=yes", "-o", f"ServerAliveInterval={SERVER_ALIVE_S}",
                 "-o", "ServerAliveCountMax=3", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
                 "-o", "ClearAllForwardings=yes", "-o", "PermitLocalCommand=no"]
        if self.port is not None:
            argv += ["-p", str(self.port)]
        if self.user is not None:
            argv += ["-l", self.user]
        return [*argv, "--", self.hostname, f"{shlex.quote(self.workbench)} daemon connect"]


def hosts_file() -> Path:
    return paths.config_dir() / "hosts.toml"


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise UsageError(f"bad host name {name!r}: use letters, digits, '.', '_' or '-' (at most 32)")
    if name in RESERVED:
        raise UsageError(f"the host name {name!r} is reserved for this machine")
    return name


def parse_url(url: str) -> tuple[str, str | None, int | None]:
    """`ssh://[user@]host[:port]` -> (host, user, port), or a UsageError saying what is wrong."""
    bad = f"bad host URL {url!r}: expected ssh://[user@]host[:port]"
    parts = urlsplit(url)
    if parts.scheme != "ssh" or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(bad)
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"{bad} (the port must be 1-65535)") from None
    if port == 0:
        raise UsageError(f"{bad} (the port must be 1-65535)")
    host = parts.hostname or ""
    if parts.password is not None:
        raise UsageError(f"{bad} (no password in the URL: ssh uses your keys or agent)")
    user = parts.username
    if ":" in host:  # an IPv6 address, given in brackets
        if not re.match(r"^[0-9a-fA-F:.]+$", host):
            raise UsageError(bad)
    elif not _HOSTNAME_RE.match(host):
        raise UsageError(bad)
    if user is not None and not _USER_RE.match(user):
        raise UsageError(f"{bad} (bad user name {user!r})")
    return host, user, port


def make_host(name: str, url: str, ssh_config: str | None = None, workbench: str | None = None) -> Host:
    check_name(name)
    hostname, user, port = parse_url(url)
    if ssh_config is not None:
        cfg = Path(ssh_config).expanduser()
        if not cfg.is_file():
            raise UsageError(f"--ssh-config {ssh_config}: no such file")
        ssh_config = str(cfg.absolute())
    if workbench is not None and (not workbench or "\n" in workbench or "\0" in workbench):
        raise UsageError("--workbench must be the path of workbench on that host")
    return Host(name, url, hostname, user, port, ssh_config, workbench or "workbench")


def load() -> dict[str, Host]:
    """The configured hosts, in the file's order; a broken file is a ConfigError naming it."""
    f = hosts_file()
    try:
        data = tomllib.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{f}: {e}") from None
    table = data.get("hosts", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{f}: [hosts] must be a table")
    out: dict[str, Host] = {}
    for name, entry in table.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ConfigError(f"{f}: [hosts.{name}] needs url = \"ssh://...\"")
        extra = set(entry) - {"url", "ssh_config", "workbench"}
        if extra:
            raise ConfigError(f"{f}: [hosts.{name}]: unknown key {sorted(extra)[0]!r}")
        opt = {k: entry[k] for k in ("ssh_config", "workbench") if k in entry}
        if not all(isinstance(v, str) for v in opt.values()):
            raise ConfigError(f"{f}: [hosts.{name}]: ssh_config and workbench must be strings")
        try:
            check_name(name)
            hostname, user, port = parse_url(entry["url"])
        except UsageError as e:
            raise ConfigError(f"{f}: {e}") from None
        out[name] = Host(name, entry["url"], hostname, user, port, opt.get("ssh_config"),
                         opt.get("workbench", "workbench"))
    return out


def save(hosts: dict[str, Host]) -> None:
    """Write the file whole (JSON strings are valid TOML basic strings), then rename it in."""
    lines = ["# workbench remote hosts: edit with `workbench host add|rm` (docs/remote.md)", ""]
    for h in hosts.values():
        lines.append(f"[hosts.{json.dumps(h.name)}]")
        lines.append(f"url = {json.dumps(h.url)}")
        if h.ssh_config:
            lines.append(f"ssh_config = {json.dumps(h.ssh_config)}")
        if h.workbench != "workbench":
            lines.append(f"workbench = {json.dumps(h.workbench)}")
        lines.append("")
    f = hosts_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_name(f".{f.name}.{os.getpid()}")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, f)


def add(host: Host, replace: bool = False) -> None:
    hosts = load()
    if host.name in hosts and not replace:
        raise UsageError(f"host {host.name!r} exists; remove it first with `workbench host rm {host.name}`")
    hosts[host.name] = host
    save(hosts)


def remove(name: str) -> None:
    hosts = load()
    if name not in hosts:
        raise UsageError(f"no host {name!r}; see `workbench host ls`")
    del hosts[name]
    save(hosts)
