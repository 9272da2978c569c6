"""The seccomp filter every sandboxed session runs under, as a classic BPF program.

bubblewrap loads it with `--seccomp FD`. It is a deny-list on top of the namespaces and
dropped capabilities: it closes the holes those leave (TIOCSTI into the terminal,
ptrace of siblings inside the sandbox, nested namespaces, io_uring, kernel keyrings, bpf,
perf, userfaultfd). Denied calls return EPERM rather than killing, so tools that probe for
a feature (e.g. a test runner trying io_uring) fall back instead of dying; `clone3`
returns ENOSYS because glibc then falls back to `clone`, whose flags we can inspect
(clone3 passes them in memory, out of reach of a classic filter).

Syscalls from a foreign ABI (i386 `int 0x80` or x32 on x86_64) are denied outright: their
numbers differ, so letting them through would skip every rule below.
"""

from __future__ import annotations

import errno
import functools
import os
import platform
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass

# Classic BPF opcodes (linux/filter.h).
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_JSET_K = 0x45
BPF_RET_K = 0x06

SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

# struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6].
OFF_NR = 0
OFF_ARCH = 4


def _arg_lo(i: int) -> int:
    """Offset of the low 32 bits of argument `i` (little-endian)."""
    return 16 + 8 * i


# ioctl's request and clone's legacy flags are truncated to 32 bits by the kernel, so the
# filter must look at the low word only: comparing all 64 bits lets a caller set high bits
# to slip past (CVE-2019-10063 in flatpak).
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NS_FLAGS = (
    CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET
)

# Denied outright, by name. Mount-family and module calls also need capabilities we
# drop; listing them keeps the filter meaningful if a capability ever leaks.
DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
)

# Syscall numbers per architecture (x86_64: asm/unistd_64.h; aarch64: asm-generic/unistd.h).
SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "ioctl": 16,
        "clone": 56,
        "clone3": 435,
        "ptrace": 101,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "unshare": 272,
        "setns": 308,
        "mount": 165,
        "umount2": 166,
        "pivot_root": 155,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "keyctl": 250,
        "add_key": 248,
        "request_key": 249,
        "bpf": 321,
        "perf_event_open": 298,
        "userfaultfd": 323,
        "kexec_load": 246,
        "kexec_file_load": 320,
        "init_module": 175,
        "finit_module": 313,
        "delete_module": 176,
    },
    "aarch64": {
        "ioctl": 29,
        "clone": 220,
        "clone3": 435,
        "ptrace": 117,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "unshare": 97,
        "setns": 268,
        "mount": 40,
        "umount2": 39,
        "pivot_root": 41,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsconfig": 431,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "keyctl": 219,
        "add_key": 217,
        "request_key": 218,
        "bpf": 280,
        "perf_event_open": 241,
        "userfaultfd": 282,
        "kexec_load": 104,
        "kexec_file_load": 294,
        "init_module": 105,
        "finit_module": 273,
        "delete_module": 106,
    },
}
AUDIT_ARCH = {"x86_64": AUDIT_ARCH_X86_64, "aarch64": AUDIT_ARCH_AARCH64}
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


class UnsupportedArch(Exception):
    """No syscall table for this machine; the caller decides how loudly to fail."""


@dataclass(frozen=True)
class Insn:
    code: int
    jt: int
    jf: int
    k: int


def native_arch() -> str:
    machine = platform.machine().lower()
    return _MACHINE_ALIASES.get(machine, machine)


def _errno(code: int) -> int:
    return SECCOMP_RET_ERRNO | (code & 0xFFFF)


def build(arch: str | None = None) -> list[Insn]:
    """The filter for `arch` (default: this machine) as a list of instructions."""
    arch = arch or native_arch()
    if arch not in SYSCALLS:
        raise UnsupportedArch(
            f"no seccomp syscall table for {arch!r} (supported: {', '.join(SYSCALLS)})"
        )
    nr = SYSCALLS[arch]
    eperm = _errno(errno.EPERM)
    prog: list[Insn] = [
        Insn(BPF_LD_W_ABS, 0, 0, OFF_ARCH),
        Insn(BPF_JEQ_K, 1, 0, AUDIT_ARCH[arch]),
        Insn(BPF_RET_K, 0, 0, eperm),  # foreign ABI
        Insn(BPF_LD_W_ABS, 0, 0, OFF_NR),
    ]
    if arch == "x86_64":
        prog += [Insn(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT), Insn(BPF_RET_K, 0, 0, eperm)]
    for name in DENIED:
        prog += [Insn(BPF_JEQ_K, 0, 1, nr[name]), Insn(BPF_RET_K, 0, 0, eperm)]
    prog += [Insn(BPF_JEQ_K, 0, 1, nr["clone3"]), Insn(BPF_RET_K, 0, 0, _errno(errno.ENOSYS))]
    # ioctl: only the terminal-injection requests are refused.
    prog += [
        Insn(BPF_JEQ_K, 0, 5, nr["ioctl"]),
        Insn(BPF_LD_W_ABS, 0, 0, _arg_lo(1)),
        Insn(BPF_JEQ_K, 2, 0, TIOCSTI),
        Insn(BPF_JEQ_K, 1, 0, TIOCLINUX),
        Insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        Insn(BPF_RET_K, 0, 0, eperm),
    ]
    # clone: threads and forks pass, any namespace flag is refused.
    prog += [
        Insn(BPF_JEQ_K, 0, 3, nr["clone"]),
        Insn(BPF_LD_W_ABS, 0, 0, _arg_lo(0)),
        Insn(BPF_JSET_K, 0, 1, CLONE_NS_FLAGS),
        Insn(BPF_RET_K, 0, 0, eperm),
    ]
    prog.append(Insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    return prog


def assemble(prog: Sequence[Insn]) -> bytes:
    """struct sock_filter[] in native byte order, as the kernel (and bwrap) read it."""
    return b"".join(struct.pack("=HBBI", i.code, i.jt, i.jf, i.k) for i in prog)


def program_bytes(arch: str | None = None) -> bytes:
    """The assembled filter; fixed per architecture, so built once (every spawn asks). The
    machine is resolved first: the cache is keyed by the architecture, never by None."""
    return _program_bytes(arch or native_arch())


@functools.cache
def _program_bytes(arch: str) -> bytes:
    return assemble(build(arch))


def memfd(arch: str | None = None) -> int:
    """An fd holding the program, positioned at 0, for `bwrap --seccomp FD`.

    bwrap reads the fd to EOF, so each fd serves one spawn. It is inheritable because
    ptyprocess hands pass_fds through exec without clearing close-on-exec; close it
    right after spawning.
    """
    data = program_bytes(arch)
    fd = os.memfd_create("workbench-seccomp", 0)
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def simulate(prog: Sequence[Insn], arch: str, nr: int, args: Sequence[int] = ()) -> int:
    """Run the program the way the kernel would for one syscall; returns the action.

    A tiny interpreter for the opcodes `build` emits, so the policy can be checked for
    architectures this machine cannot run.
    """
    if sys.byteorder != "little":
        raise UnsupportedArch("simulate() assumes a little-endian seccomp_data layout")
    full = [*args, 0, 0, 0, 0, 0, 0][:6]
    data = struct.pack("<iIQ6Q", nr, AUDIT_ARCH.get(arch, 0), 0, *(a & (2**64 - 1) for a in full))
    acc = 0
    pc = 0
    while pc < len(prog):
        ins = prog[pc]
        if ins.code == BPF_LD_W_ABS:
            acc = struct.unpack_from("<I", data, ins.k)[0]
            pc += 1
        elif ins.code == BPF_RET_K:
            return ins.k
        elif ins.code in (BPF_JEQ_K, BPF_JGE_K, BPF_JSET_K):
            if ins.code == BPF_JEQ_K:
                taken = acc == ins.k
            elif ins.code == BPF_JGE_K:
                taken = acc >= ins.k
            else:
                taken = bool(acc & ins.k)
            pc += 1 + (ins.jt if taken else ins.jf)
        else:
            raise ValueError(f"unknown opcode {ins.code:#x} at {pc}")
    raise ValueError("program fell off the end without a return")
