"""The `workbench` command's entry point (pyproject's console script and `python -m workbench`).

Kept tiny: the everyday commands a script or agent calls in a loop (`ls`, `screen`, `keys`,
`send`, ...) run on the click-free fast path (`cli_fast`, a few ms over the interpreter's
start); everything else, and every usage error or `--help`, goes to the click CLI (`cli_full`).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    from workbench import cli_fast

    code = cli_fast.run(args)
    if code is None:
        return
    if code >= 0:
        sys.exit(code)
    from workbench import cli_full

    cli_full.main(argv)


if __name__ == "__main__":
    main()
