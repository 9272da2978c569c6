"""The `workbench` launcher that `make install` writes over pip's console script.

It starts Python without `site` (`-S`) and puts the package's own directory and the
virtualenv's site-packages on the path by hand. `site` costs ~1.2 ms of every start (the
.pth files, sitecustomize, the user site check): a fifth of what a fast CLI call (`keys`,
`screen`, `ls`) costs beyond the interpreter itself, and a script that types and reads in
a loop pays it every call (docs/performance.md, "A fast CLI path"). The click CLI, the UI
and the daemon run `site.main()` first (`cli.py`), so they see what a normal start sees.

Run: python -m workbench.launcher PATH   (PATH: where pip put the console script)
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

import workbench


def launcher_text(python: str, paths: list[str]) -> str:
    return (
        f"#!{python} -S\n"
        "# Written by `make install` (python -m workbench.launcher): Python without `site`, whose\n"
        "# start costs a fifth of a fast CLI call; the slow paths load it (workbench/cli.py).\n"
        "import sys\n"
        f"sys.path.extend(p for p in {paths!r} if p not in sys.path)\n"
        "from workbench.cli import main\n"
        "sys.exit(main())\n"
    )


def install(target: Path) -> None:
    """Write the launcher to `target` (replacing it atomically), for this interpreter."""
    package_parent = str(Path(workbench.__file__).resolve().parent.parent)
    # The package first: its first import then lists one small directory, not site-packages.
    installed = sysconfig.get_paths()
    paths = list(dict.fromkeys([package_parent, installed["purelib"], installed["platlib"]]))
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(launcher_text(sys.executable, paths))
    tmp.chmod(0o755)
    os.replace(tmp, target)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m workbench.launcher PATH\n")
        return 2
    install(Path(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
