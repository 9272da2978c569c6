"""Which shell commands plainly cannot change anything, so they may run without approval.

Conservative on purpose: a program not listed, an option that writes, or shell syntax beyond
`|`, `||`, `&&` and `;` means "not read-only", and the loop asks. Only the argv is read.
"""

from __future__ import annotations

import re
import shlex

_SHELLS = {"bash", "sh", "zsh", "dash"}
_SIMPLE = {
    "ls", "cat", "head", "tail", "wc", "pwd", "echo", "stat", "which", "nl", "cut", "tr",
    "basename", "dirname", "realpath", "readlink", "true", "grep", "egrep", "fgrep", "du", "df",
}  # fmt: skip
_FIND_WRITES = {"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0",
                "-fprintf", "-fls"}  # fmt: skip
_SED_PRINT = re.compile(r"^\s*(\d+|\$)(\s*,\s*(\d+|\$))?\s*p\s*$")
_GIT_BRANCH_FLAGS = {"-a", "--all", "-r", "--remotes", "-v", "-vv", "--verbose", "--list",
                     "-l", "--show-current", "--no-color", "--color", "--no-column"}  # fmt: skip
_SHELL_OPERATORS = {"|", "||", "&&", ";"}


def _program(word: str) -> str | None:
    if "/" not in word:
        return word
    # Only trust absolute paths in system directories; ./ls could be anything.
    head, _, base = word.rpartition("/")
    return base if head in ("/bin", "/usr/bin", "/usr/local/bin") else None


def _has_short(args: list[str], letter: str) -> bool:
    """Whether a short option appears, alone or in a cluster like `-uo`."""
    return any(a.startswith("-") and not a.startswith("--") and letter in a for a in args)


def _read_only_simple(argv: list[str]) -> bool:
    if not argv:
        return False
    prog = _program(argv[0])
    args = argv[1:]
    if prog is None:
        return False
    if prog in _SIMPLE:
        return True
    if prog == "tree":
        return not (_has_short(args, "o") or any(a.startswith("--output") for a in args))
    if prog == "file":
        return not (_has_short(args, "C") or "--compile" in args)
    if prog == "rg":
        return not any(a.startswith("--pre") for a in args)
    if prog == "find":
        return not any(a in _FIND_WRITES for a in args)
    if prog == "sort":
        return not (
            _has_short(args, "o") or any(a.startswith(("--output", "--compress")) for a in args)
        )
    if prog == "uniq":
        return sum(1 for a in args if not a.startswith("-")) <= 1  # a second name is an output
    if prog == "sed":
        return _read_only_sed(args)
    if prog == "git":
        return _read_only_git(args)
    return False


def _read_only_sed(args: list[str]) -> bool:
    if "-n" not in args:
        return False
    rest = [a for a in args if a != "-n"]
    if any(a.startswith("-") for a in rest) or not rest:
        return False  # -i, --in-place, -e, -f ...: not the plain `sed -n 'N,Mp' file` form
    return bool(_SED_PRINT.match(rest[0]))


def _read_only_git(args: list[str]) -> bool:
    while args and args[0] in ("--no-pager", "--no-optional-locks"):
        args = args[1:]
    if not args:
        return False
    sub, rest = args[0], args[1:]
    if sub in ("status", "log", "diff", "show"):
        return not any(a.startswith(("--output", "--ext-diff")) for a in rest)
    if sub == "branch":
        if "--list" in rest or "-l" in rest:
            return all(a in _GIT_BRANCH_FLAGS or not a.startswith("-") for a in rest)
        return all(a in _GIT_BRANCH_FLAGS for a in rest)  # a bare name would create a branch
    return False


def _split_script(script: str) -> list[list[str]] | None:
    """The simple commands of a `cmd | cmd && cmd` script, or None if it uses anything else."""
    if any(c in script for c in "\n\r`$<>()#") or "&" in script.replace("&&", ""):
        return None
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    commands: list[list[str]] = [[]]
    for tok in tokens:
        if tok in _SHELL_OPERATORS:
            commands.append([])
        elif set(tok) <= set(";&|"):
            return None
        else:
            commands[-1].append(tok)
    return commands if all(commands) else None


def is_known_read_only(argv: list[str]) -> bool:
    """True only for commands that plainly cannot change anything (conservative)."""
    if not argv or not all(isinstance(a, str) for a in argv):
        return False
    prog = _program(argv[0])
    if prog in _SHELLS:
        if len(argv) != 3 or argv[1] not in ("-c", "-lc"):
            return False
        commands = _split_script(argv[2])
        if commands is None:
            return False
        return all((cmd[0] == "cd" and len(cmd) <= 2) or _read_only_simple(cmd) for cmd in commands)
    if any(a in _SHELL_OPERATORS or a.startswith((">", "<")) for a in argv[1:]):
        return False  # written as if a shell would interpret it; be safe
    return _read_only_simple(argv)
