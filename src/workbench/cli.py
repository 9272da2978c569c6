"""The `workbench` command's entry point (pyproject's console script and `python -m workbench`).

Kept tiny: the everyday commands a script or agent calls in a loop (`ls`, `screen`, `keys`,
`send`, ...) run on the click-free fast path (`cli_fast`, a few ms over the interpreter's
start); everything else, and every usage error or `--help`, goes to the click CLI (`cli_full`).
`make install` starts this without `site`, which the click path loads (workbench/launcher.py).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    from workbench import cli_fast

    code = cli_fast.run(args)
    if code is None or code >= 0:
        if argv is None:  # the process is this command: end it now
            _exit(code or 0)
        if code:
            sys.exit(code)
        return
    if sys.flags.no_site:  # started by the launcher (workbench/launcher.py): now load `site`
        import site

        site.main()
    from workbench import cli_full

    cli_full.main(argv)


def _exit(code: int) -> None:
    """Flush and leave without the interpreter's teardown of every loaded module (a tenth of
    a fast call); the fast path holds nothing that needs it (its socket closes with us)."""
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: as click, exit 1
        code = code or 1
    os._exit(code)


if __name__ == "__main__":
    main()
