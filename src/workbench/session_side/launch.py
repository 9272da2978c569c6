"""The argv that runs a `session_side` module inside a sandbox.

`-I -S -B`: no environment variables, no user or site packages, no bytecode writes, so
nothing the session planted in its home, its worktree or its environment is imported. The
only path added is the directory holding the installed `workbench` package, which the
sandbox sees read-only.
"""

from __future__ import annotations

import sys
from pathlib import Path

# .../site-packages or .../src: the directory that holds `workbench/`.
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def bootstrap(module: str) -> str:
    """Python source that imports `workbench.session_side.<module>` and runs its `main`."""
    if not module.isidentifier():
        raise ValueError(f"not a module name: {module!r}")
    return (
        f"import sys;sys.path[:0]=[{PACKAGE_ROOT!r}];"
        f"from workbench.session_side.{module} import main;"
        "sys.exit(main(sys.argv[1:]))"
    )


def argv(module: str, *args: str) -> list[str]:
    """`[python, -I, -S, -B, -c, BOOT, *args]` for `workbench.session_side.<module>`."""
    return [sys.executable, "-I", "-S", "-B", "-c", bootstrap(module), *args]


def private_tmp_paths() -> list[str]:
    """The package and interpreter directories that lie under a sandbox's private tmpfs
    (/tmp, /var/tmp, /run: a checkout or venv in /tmp), to bind read-only so helpers run."""
    tmpfs = ("/tmp", "/var/tmp", "/run")
    found = []
    for p in (PACKAGE_ROOT, sys.prefix, sys.base_prefix):
        real = str(Path(p).resolve())
        if real.startswith(tuple(t + "/" for t in tmpfs)) and real not in found:
            found.append(real)
    return found
