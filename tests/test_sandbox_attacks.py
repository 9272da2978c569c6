"""Escape attempts from inside a real sandboxed session, and the work that must still pass.

Every attack asserts that it failed inside, that its target is unchanged and, where the
action is possible at all outside, that the same script succeeds unsandboxed (mode
"off"), so a broken sandbox makes the test fail rather than pass for another reason.
Run as root and as an unprivileged user (tests/run_as_user.sh).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git
from tests.helpers import wait_for
from tests.sandbox_fixtures import (
    DOTENV_SECRET,
    SECRET_KEY,
    PtyShell,
    World,
    abstract_listener,
    build_world,
    inside_python,
    outside_process,
    tcp_listener,
    udp_listener,
    unix_listener,
)
from workbench import paths
from workbench.core import bwrap_argv, sandbox_net, seccomp

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("needs_bwrap")]

NR = seccomp.SYSCALLS.get(seccomp.native_arch(), {})

PRELUDE = textwrap.dedent(
    f"""
    import ctypes, errno, os, socket, sys
    NR = {NR!r}
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    def attempt(label, fn):
        try:
            r = fn()
        except OSError as e:
            print("RESULT", label, "blocked", errno.errorcode.get(e.errno, e.errno), flush=True)
            return
        print("RESULT", label, "ok", r, flush=True)
    def no_interfaces():
        # Never send a packet off this machine from a broken sandbox. (/sys is the
        # host's, so /sys/class/net would list host interfaces: ask the kernel.)
        ifaces = [n for _, n in socket.if_nameindex() if n != "lo"]
        if ifaces:
            print("RESULT interfaces ok", *ifaces, flush=True)
            sys.exit(0)
    def sysc(name, *args):
        r = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_ulong(a) for a in args])
        if r == -1:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return r
    """
)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


def results(out: str) -> dict[str, list[str]]:
    found = {}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            parts = line.split()
            found[parts[1]] = parts[2:]
    return found


def attack(world: World, body: str, **kw: object) -> dict[str, list[str]]:
    proc = world.py(PRELUDE + textwrap.dedent(body), **kw)  # type: ignore[arg-type]
    res = results(proc.stdout)
    assert res, f"attack script did not run: rc={proc.returncode} stderr={proc.stderr!r}"
    return res


def assert_all_blocked(res: dict[str, list[str]], *errnos: str) -> None:
    for label, outcome in res.items():
        assert outcome[0] == "blocked", f"{label} was not blocked: {outcome}"
        if errnos:
            assert outcome[1] in errnos, f"{label} blocked with {outcome[1]}, expected {errnos}"


def control(world: World, body: str) -> dict[str, list[str]]:
    """The same script with the sandbox off: proves the attack itself works."""
    return attack(world, body, spec=world.spec(mode="off"))


def snapshot(p: Path) -> bytes | None:
    try:
        return p.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return b"<dir>"


# ------------------------------------------------------------------ writes to files

WRITE_TARGETS: dict[str, Callable[[World], Path]] = {
    "real-home-bashrc": lambda w: w.real_home / ".bashrc",
    "real-home-new-file": lambda w: w.real_home / "planted",
    "etc": lambda w: Path("/etc/wb-sandbox-attack"),
    "main-checkout-file": lambda w: w.repo / "README.md",
    "main-checkout-new-file": lambda w: w.repo / "planted.py",
    "sibling-worktree": lambda w: w.sibling.worktree / "planted.py",
    "sibling-home": lambda w: w.sibling.home / ".bashrc",
    "repo-config": lambda w: w.common / "config",
    "hooks-pre-commit": lambda w: w.common / "hooks" / "pre-commit",
    "sibling-branch-ref": lambda w: w.sibling.gitdir / "refs" / "heads" / "wb" / "alpha",
    "sibling-objects": lambda w: w.sibling.gitdir / "objects" / "info" / "alternates",
    "user-objects-new-file": lambda w: w.common / "objects" / "planted",
    "workbench-import-ref": lambda w: w.common / "refs" / "workbench" / "me" / "snapshot",
    "main-branch-ref": lambda w: w.common / "refs" / "heads" / "main",
    "packed-refs": lambda w: w.common / "packed-refs",
    "objects-info-alternates": lambda w: w.common / "objects" / "info" / "alternates",
    "sibling-gitdir-head": lambda w: w.sibling.gitdir / "HEAD",
    "workbench-data-dir": lambda w: paths.data_dir() / "planted",
}


@pytest.mark.parametrize("target", sorted(WRITE_TARGETS))
def test_write_is_blocked(world: World, target: str) -> None:
    path = WRITE_TARGETS[target](world)
    before = snapshot(path)
    body = f"""
    p = {str(path)!r}
    def append():
        with open(p, "a") as f:
            f.write("[core]\\n\\tfsmonitor = touch /tmp/pwned\\n")
    attempt("append", append)
    if os.path.lexists(p):
        attempt("unlink", lambda: os.unlink(p))
        def rename_over():
            tmp = p + ".wbtmp"
            try:
                with open(tmp, "w") as f:
                    f.write("pwned\\n")
                os.rename(tmp, p)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        attempt("rename_over", rename_over)
    """
    res = attack(world, body)
    assert_all_blocked(res)
    assert snapshot(path) == before, f"{path} changed"
    assert not Path(str(path) + ".wbtmp").exists()
    if target == "etc":
        return  # no control: the test never writes to the real /etc
    try:
        ctl = control(world, body.split("if os.path.lexists")[0])
        assert ctl["append"][0] == "ok", "control: the same write must work unsandboxed"
        assert snapshot(path) != before
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        elif before != b"<dir>":
            path.write_bytes(before)


def test_user_repo_refs_via_git_are_blocked(world: World) -> None:
    """The session's git can reach the user's repository only to read it."""
    refs = world.host_git("for-each-ref")
    config = (world.common / "config").read_bytes()
    (world.me.worktree / "x.txt").write_text("x\n")
    proc = world.sh(
        f"git add x.txt && git commit -qm evil; "
        f"git push {world.repo} HEAD:refs/heads/main 2>&1; "
        f"git push {world.repo} HEAD:refs/workbench/me/snapshot 2>&1; "
        f"git --git-dir {world.common} update-ref refs/heads/main HEAD 2>&1; "
        f"git --git-dir {world.common} config core.fsmonitor 'touch /tmp/pwned' 2>&1; true"
    )
    assert "Read-only file system" in proc.stdout or "unable to" in proc.stdout
    assert world.host_git("for-each-ref") == refs
    assert (world.common / "config").read_bytes() == config
    # Control: outside the sandbox the same update works.
    ctl = world.sh(f"git push {world.repo} HEAD:refs/heads/planted", spec=world.spec(mode="off"))
    assert ctl.returncode == 0
    assert world.host_git("rev-parse", "refs/heads/planted") == git(world.me.worktree, "rev-parse", "HEAD").strip()


def test_sessions_own_git_is_its_own(world: World) -> None:
    """Branches, config and hooks inside the session's repository are the session's."""
    proc = world.sh(
        "set -e; git branch -f main HEAD; git branch planted; git tag planted; "
        "git config core.fsmonitor false; git config --get core.fsmonitor"
    )
    assert proc.returncode == 0, proc.stderr
    assert world.host_git("branch", "--list", "planted") == ""
    assert world.host_git("tag", "--list", "planted") == ""
    assert "fsmonitor" not in (world.common / "config").read_text()


# -------------------------------------------------------------------------- secrets


def test_read_ssh_key_is_blocked(world: World) -> None:
    body = f"""
    attempt("ssh_key", lambda: open({str(world.secret)!r}).read())
    # An empty listing (tmpfs over ~/.ssh) counts as blocked: it falls through to ENOENT.
    attempt("ssh_dir", lambda: os.listdir({str(world.secret.parent)!r}) or os.stat("/nonexistent"))
    """
    res = attack(world, body)
    assert_all_blocked(res)
    proc = world.sh(f"cat {world.secret} ~/.ssh/id_rsa; true")
    assert "wb-test-secret" not in proc.stdout
    ctl = control(world, body)
    assert ctl["ssh_key"][0] == "ok"


def test_read_dotenv_of_main_checkout_is_blocked(world: World) -> None:
    res = attack(world, f'attempt("dotenv", lambda: open({str(world.dotenv)!r}).read() or os.stat("/x"))')
    assert_all_blocked(res)
    proc = world.sh(f"cat {world.dotenv}; true")
    assert DOTENV_SECRET not in proc.stdout
    assert control(world, f'attempt("dotenv", lambda: open({str(world.dotenv)!r}).read())')[
        "dotenv"][0] == "ok"


def test_read_proc_environ_of_outside_process_is_blocked(world: World) -> None:
    secret = "wb-outside-env-secret-42"
    with outside_process(secret) as proc:
        body = f"""
        attempt("environ", lambda: open("/proc/{proc.pid}/environ", "rb").read() or os.stat("/x"))
        leaked = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if b{secret!r} in open(f"/proc/{{pid}}/environ", "rb").read():
                        leaked.append(pid)
                except OSError:
                    pass
        print("RESULT scan", "blocked" if not leaked else "ok", "EPERM" if not leaked else leaked)
        """
        res = attack(world, body)
        assert_all_blocked(res)
        assert control(world, body)["environ"][0] == "ok"
        assert proc.poll() is None


def test_daemon_environment_secret_is_not_passed(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WB_DAEMON_SECRET", "wb-daemon-secret-77")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wb-test-not-for-sandbox")
    proc = world.sh("env; cat /proc/1/environ /proc/self/environ 2>/dev/null | tr '\\0' '\\n'")
    assert proc.returncode == 0
    assert "wb-daemon-secret-77" not in proc.stdout
    assert "sk-wb-test-not-for-sandbox" not in proc.stdout
    assert "HOME=" + str(world.me.home) in proc.stdout
    ctl = world.sh("env", spec=world.spec(mode="off"))
    assert "wb-daemon-secret-77" in ctl.stdout


# -------------------------------------------------------------------------- network



def test_tcp_to_host_loopback_is_blocked(world: World) -> None:
    with tcp_listener() as (lis, port):
        body = f"""
        def go():
            s = socket.create_connection(("127.0.0.1", {port}), timeout=3)
            return s.recv(100)
        attempt("tcp", go)
        """
        assert_all_blocked(attack(world, body))
        assert lis.hits == 0
        assert control(world, body)["tcp"][0] == "ok"
        assert lis.hits == 1


def test_tcp_to_external_address_is_blocked(world: World) -> None:
    # 192.0.2.1 is TEST-NET-1; the guard refuses to try if the sandbox has an interface.
    body = """
    no_interfaces()
    attempt("tcp_ext", lambda: socket.create_connection(("192.0.2.1", 80), timeout=3))
    """
    assert_all_blocked(attack(world, body), "ENETUNREACH")


def test_udp_out_is_blocked(world: World) -> None:
    with udp_listener() as (lis, port):
        body = f"""
        no_interfaces()
        attempt("udp_ext", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
            b"ping", ("192.0.2.1", 9)))
        # Lands on the sandbox's own loopback, if anywhere: the host listener must not see it.
        attempt("udp_loopback", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
            b"ping", ("127.0.0.1", {port})))
        """
        res = attack(world, body)
        assert res["udp_ext"][:2] == ["blocked", "ENETUNREACH"]
        time.sleep(0.3)
        assert lis.hits == 0
        ctl = f"""
        attempt("udp_loopback", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
            b"ping", ("127.0.0.1", {port})))
        """
        assert control(world, ctl)["udp_loopback"][0] == "ok"
        wait_for(lambda: lis.hits == 1, 5, what="the control datagram")


def test_unix_path_socket_of_host_is_blocked(world: World) -> None:
    with unix_listener() as (lis, path):
        body = f"""
        def go():
            s = socket.socket(socket.AF_UNIX)
            s.connect({path!r})
            return s.recv(100)
        attempt("unix", go)
        """
        assert_all_blocked(attack(world, body))
        assert lis.hits == 0
        assert control(world, body)["unix"][0] == "ok"


def test_abstract_socket_of_host_is_blocked(world: World) -> None:
    with abstract_listener() as (lis, name):
        body = f"""
        def go():
            s = socket.socket(socket.AF_UNIX)
            s.connect("\\0" + {name!r})
            return s.recv(100)
        attempt("abstract", go)
        """
        assert_all_blocked(attack(world, body), "ECONNREFUSED")
        assert lis.hits == 0
        assert control(world, body)["abstract"][0] == "ok"


def test_daemon_socket_is_blocked(world: World) -> None:
    rt = paths.ensure_private_dir(paths.runtime_dir())
    with unix_listener(rt / "daemon.sock") as (lis, path):
        assert path == str(paths.socket_path())
        body = f"""
        def go():
            s = socket.socket(socket.AF_UNIX)
            s.connect({path!r})
            return s.recv(100)
        attempt("daemon", go)
        attempt("runtime_dir", lambda: os.listdir({str(rt)!r}) or os.stat("/x"))
        """
        assert_all_blocked(attack(world, body))
        assert lis.hits == 0
        assert control(world, body)["daemon"][0] == "ok"


def test_network_mode_does_not_expose_host_loopback(world: World) -> None:
    problem = sandbox_net.network_problem()
    if problem:
        pytest.skip(f"network mode cannot run here: {problem[0]} ({problem[1]})")
    with tcp_listener() as (lis, port), abstract_listener() as (alis, name):
        body = f"""
        for host in ("127.0.0.1", "10.0.2.2"):
            attempt("tcp_" + host, lambda: socket.create_connection((host, {port}), timeout=3))
        def ab():
            s = socket.socket(socket.AF_UNIX)
            s.connect("\\0" + {name!r})
        attempt("abstract", ab)
        print("RESULT interfaces", *[n for _, n in socket.if_nameindex()])
        """
        res = attack(world, body, spec=world.spec(network=True))
        assert "tap0" in res.pop("interfaces"), "slirp4netns did not configure the namespace"
        assert_all_blocked(res)
        assert lis.hits == 0 and alis.hits == 0


# ------------------------------------------------------------------------ processes


def test_signal_outside_process_is_blocked(world: World) -> None:
    with outside_process("x") as proc:
        body = f"""
        attempt("probe", lambda: os.kill({proc.pid}, 0))
        attempt("kill", lambda: os.kill({proc.pid}, 9))
        attempt("pidfd", lambda: os.pidfd_open({proc.pid}))
        """
        res = attack(world, body)
        assert_all_blocked(res)
        assert proc.poll() is None, "outside process was killed"
        assert control(world, f'attempt("probe", lambda: os.kill({proc.pid}, 0))')["probe"][0] == "ok"


def test_ptrace_outside_process_is_blocked(world: World) -> None:
    with outside_process("x") as proc:
        body = f"""
        attempt("attach", lambda: sysc("ptrace", 16, {proc.pid}, 0, 0))  # PTRACE_ATTACH
        attempt("seize", lambda: sysc("ptrace", 0x4206, {proc.pid}, 0, 0))  # PTRACE_SEIZE
        """
        assert_all_blocked(attack(world, body))
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert "TracerPid:\t0" in status
        assert proc.poll() is None


def test_ptrace_and_process_vm_inside_are_blocked_by_seccomp(world: World) -> None:
    # Namespaces alone would allow tracing our own child; seccomp must refuse with EPERM.
    body = """
    import subprocess
    child = subprocess.Popen(["sleep", "30"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    attempt("attach_child", lambda: sysc("ptrace", 16, child.pid, 0, 0))
    attempt("vm_readv", lambda: sysc("process_vm_readv", child.pid, 0, 0, 0, 0, 0))
    os.kill(child.pid, 9)
    while True:  # a traced child also reports stops: wait until it is really gone
        _, st = os.waitpid(child.pid, 0)
        if os.WIFEXITED(st) or os.WIFSIGNALED(st):
            break
    """
    assert_all_blocked(attack(world, body), "EPERM")
    assert control(world, body)["attach_child"][0] == "ok"


def test_remount_root_read_write_is_blocked(world: World) -> None:
    body = """
    def remount():
        # MS_REMOUNT | MS_BIND without MS_RDONLY: make the root bind writable again.
        if libc.mount(b"none", b"/", None, ctypes.c_ulong(0x20 | 0x1000), None) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    attempt("remount", remount)
    import subprocess
    r = subprocess.run(["mount", "-o", "remount,rw", "/"], capture_output=True)
    print("RESULT mount_cmd", "blocked" if r.returncode else "ok", r.returncode)
    attempt("write_root", lambda: open("/wb-planted", "w"))
    attempt("write_usr", lambda: open("/usr/wb-planted", "w"))
    """
    assert_all_blocked(attack(world, body))
    assert not Path("/wb-planted").exists() and not Path("/usr/wb-planted").exists()


def test_nested_user_namespace_is_blocked(world: World) -> None:
    CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS = 0x10000000, 0x40000000, 0x00020000
    body = f"""
    attempt("unshare_user", lambda: sysc("unshare", {CLONE_NEWUSER}))
    attempt("unshare_net", lambda: sysc("unshare", {CLONE_NEWNET}))
    attempt("unshare_mnt", lambda: sysc("unshare", {CLONE_NEWNS}))
    SIGCHLD = 17
    attempt("clone_newuser", lambda: sysc("clone", {CLONE_NEWUSER} | SIGCHLD, 0, 0, 0, 0))
    # High bits set to try to slip past a filter that compares all 64 bits.
    attempt("clone_hi", lambda: sysc("clone", (1 << 32) | {CLONE_NEWUSER} | SIGCHLD, 0, 0, 0, 0))
    attempt("clone3", lambda: sysc("clone3", 0, 0))
    attempt("setns", lambda: sysc("setns", os.open("/proc/self/ns/user", os.O_RDONLY), 0))
    import subprocess
    r = subprocess.run(["unshare", "-U", "true"], capture_output=True)
    print("RESULT unshare_cmd", "blocked" if r.returncode else "ok", r.returncode)
    """
    res = attack(world, body)
    assert_all_blocked(res)
    assert res["unshare_user"][1] == "EPERM" and res["clone_hi"][1] == "EPERM"
    assert res["clone3"][1] == "ENOSYS"
    # Control: unsandboxed, a user namespace can be created here (as root or user).
    ctl = control(world, f'attempt("unshare_user", lambda: sysc("unshare", {CLONE_NEWUSER}))')
    assert ctl["unshare_user"][0] == "ok"


@pytest.mark.parametrize(
    "name,args,distinct",
    [
        # `distinct`: unsandboxed, these arguments fail with another errno (EFAULT,
        # EINVAL...), so EPERM can only come from the filter.
        ("io_uring_setup", (8, 0), True),
        ("keyctl", (0, 0, 0, 0, 0), True),
        ("perf_event_open", (0, 0, 0xFFFFFFFF, 0xFFFFFFFF, 0), True),
        ("bpf", (0, 0, 0), False),
        ("userfaultfd", (0,), False),
    ],
)
def test_dangerous_syscalls_return_eperm(
    world: World, name: str, args: tuple[int, ...], distinct: bool
) -> None:
    body = f"attempt({name!r}, lambda: sysc({name!r}, *{args!r}))"
    assert attack(world, body)[name][:2] == ["blocked", "EPERM"]
    if distinct:
        assert control(world, body)[name][1:2] != ["EPERM"]


def test_proc_sys_and_sysrq_are_read_only(world: World) -> None:
    # As root, the sandbox's uid 0 is the host's: a writable core_pattern is a host root
    # exec. The attack writes the current value back, so even a failure changes nothing.
    before = Path("/proc/sys/kernel/core_pattern").read_text()
    body = f"""
    def w():
        with open("/proc/sys/kernel/core_pattern", "w") as f:
            f.write({before!r})
    attempt("core_pattern", w)
    attempt("sysrq", lambda: os.open("/proc/sysrq-trigger", os.O_WRONLY))
    attempt("own_proc_ok", lambda: open("/proc/self/status").read(10) and os.stat("/x"))
    """
    res = attack(world, body)
    assert_all_blocked(res)
    assert res["core_pattern"][1] in ("EROFS", "EACCES", "EPERM")
    assert Path("/proc/sys/kernel/core_pattern").read_text() == before


# ------------------------------------------------------------------------------ PTY


def test_tiocsti_into_the_terminal_is_blocked(world: World) -> None:
    sh = PtyShell(world)
    try:
        code = (
            "import fcntl, termios, errno\n"
            "for name, req in (('sti', termios.TIOCSTI), ('sti_hi', termios.TIOCSTI | (1 << 32)),"
            " ('linux', 0x541C)):\n"
            "    try:\n"
            "        fcntl.ioctl(0, req, b'X' if name != 'linux' else b'\\x00')\n"
            "        print('RESULT', name, 'ok')\n"
            "    except OSError as e:\n"
            "        print('RESULT', name, 'blocked', errno.errorcode[e.errno])\n"
        )
        (world.me.worktree / "sti.py").write_text(code)
        out = sh.run(f"{inside_python()} sti.py")
        res = results(out.replace("\r", ""))
        assert res["sti"][:2] == ["blocked", "EPERM"], out
        assert res["sti_hi"][:2] == ["blocked", "EPERM"], out
        assert res["linux"][:2] == ["blocked", "EPERM"], out
        # Nothing was pushed into the input queue: the next line runs alone.
        assert sh.run("echo CLEAN").strip().endswith("CLEAN")
    finally:
        sh.close()


# ------------------------------------------------------------------ legitimate work


def test_git_commit_on_session_branch_works(world: World) -> None:
    (world.me.worktree / "feature.py").write_text("X = 1\n")
    proc = world.sh(
        "set -e; git status --short; git add feature.py; git commit -qm 'add feature'; "
        "git log --oneline -1; git status --short | wc -l"
    )
    assert proc.returncode == 0, proc.stderr
    assert "add feature" in proc.stdout
    own = world.me.worktree
    assert git(own, "log", "-1", "--format=%s", "wb/me").strip() == "add feature"
    assert git(own, "reflog", "-1", "--format=%gs", "wb/me").startswith("commit")
    # the user's repository gained no branch and no objects of its own
    assert world.host_git("branch", "--list", "wb/*") == ""
    # gc stays off for sessions (shared objects).
    assert world.sh("git config gc.auto").stdout.strip() == "0"


def test_new_branch_under_session_prefix_works(world: World) -> None:
    proc = world.sh(
        "set -e; git switch -q -c wb/me--spike; echo y > spike.txt; git add spike.txt; "
        "git commit -qm spike; git switch -q wb/me; git branch --list 'wb/me*'"
    )
    assert proc.returncode == 0, proc.stderr
    assert git(world.me.worktree, "log", "-1", "--format=%s", "wb/me--spike").strip() == "spike"


def test_project_tests_run(world: World) -> None:
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
    proc = world.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        spec=world.spec(env=env),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_writes_in_worktree_tmp_and_private_home_work(world: World) -> None:
    proc = world.sh(
        "set -e; echo a > wt.txt; mkdir -p sub && echo b > sub/c.txt; echo t > /tmp/t.txt; "
        "cat /tmp/t.txt; echo h > ~/h.txt; cat ~/h.txt; echo $HOME"
    )
    assert proc.returncode == 0, proc.stderr
    assert (world.me.worktree / "wt.txt").read_text() == "a\n"
    assert (world.me.home / "h.txt").read_text() == "h\n"
    assert proc.stdout.split() == ["t", "h", str(world.me.home)]
    assert not (world.real_home / "h.txt").exists()


def test_job_control_works(world: World) -> None:
    sh = PtyShell(world)
    try:
        sh.send("sleep 100 &\n")
        sh.expect_prompt()
        assert "Running" in sh.run("jobs")
        sh.send("fg\n")
        sh.expect("sleep 100")
        sh.interrupt("\x03")  # Ctrl-C reaches the foreground job
        assert sh.run("echo rc=$?").strip().endswith("rc=130")
        sh.send("sleep 100\n")
        sh.expect("sleep 100")
        assert "Stopped" in sh.interrupt("\x1a")  # Ctrl-Z stops it
        assert "Stopped" in sh.run("jobs")
        sh.run("kill %1")
        assert sh.run("jobs; echo done").strip().endswith("done")
    finally:
        sh.close()


def test_window_resize_works(world: World) -> None:
    sh = PtyShell(world, cols=80, rows=24)
    try:
        assert sh.run("stty size").strip().endswith("24 80")
        (world.me.worktree / "winch.py").write_text(
            "import os, signal\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGWINCH])\n"
            "print('READY', flush=True)\n"
            "signal.sigwait([signal.SIGWINCH])\n"
            "print('WINCH', *os.get_terminal_size())\n"
        )
        sh.send(f"{inside_python()} winch.py\n")
        sh.expect("READY")
        sh.proc.setwinsize(30, 100)
        sh.expect("WINCH 100 30")
        sh.expect_prompt()
        assert sh.run("stty size").strip().endswith("30 100")
    finally:
        sh.close()


def test_strict_mode_keeps_git_read_only(world: World) -> None:
    spec = world.spec(mode="strict")
    (world.me.worktree / "s.txt").write_text("s\n")
    st = world.sh("git status --short; git log --oneline -1", spec=spec)
    assert st.returncode == 0 and "s.txt" in st.stdout
    head = git(world.me.worktree, "rev-parse", "wb/me")
    proc = world.sh("git add s.txt && git commit -qm strict", spec=spec)
    assert proc.returncode != 0
    assert git(world.me.worktree, "rev-parse", "wb/me") == head
    objects = list((world.common / "objects").rglob("*"))
    assert world.sh(f"touch {world.common}/objects/planted", spec=spec).returncode != 0
    assert list((world.common / "objects").rglob("*")) == objects
    # The worktree itself stays writable, and the workbench can commit from outside.
    assert (world.me.worktree / "s.txt").exists()
    assert world.sh("echo ok > w.txt", spec=spec).returncode == 0


def test_off_mode_runs_the_bare_command(world: World) -> None:
    spec = world.spec(mode="off")
    cmd = bwrap_argv.wrap(spec, ["true"])
    assert cmd.argv == ["true"] and cmd.pass_fds == ()
    proc = world.sh(f"cat {world.secret}", spec=spec)
    assert SECRET_KEY.splitlines()[1] in proc.stdout


def test_no_processes_left_after_sandbox_exits(world: World) -> None:
    marker = f"300.{os.getpid()}{time.monotonic_ns() % 100000}"
    proc = world.sh(f"sleep {marker} & sleep {marker} & echo started")
    assert "started" in proc.stdout
    left = subprocess.run(["pgrep", "-f", f"^sleep {marker}$"], capture_output=True, text=True)
    assert left.stdout.split() == []


def test_network_setup_failure_never_runs_the_command(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "fakeslirp"
    fake.mkdir()
    (fake / "slirp4netns").write_text("#!/bin/sh\necho 'no tun for you' >&2\nexit 1\n")
    (fake / "slirp4netns").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    problem = sandbox_net.network_problem()
    if problem:
        pytest.skip(f"network mode cannot run here: {problem[0]} ({problem[1]})")
    marker = world.me.worktree / "ran"
    proc = world.sh(f"touch {marker}; echo RAN", spec=world.spec(network=True))
    assert proc.returncode != 0
    assert "RAN" not in proc.stdout and not marker.exists()
    assert "slirp4netns failed: no tun for you" in proc.stderr
