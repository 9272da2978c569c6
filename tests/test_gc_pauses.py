"""core/gc_pauses.py: start-up objects frozen, young generation collected less often."""

from __future__ import annotations

import subprocess
import sys

from workbench.core import gc_pauses


def test_settle_freezes_what_exists_and_raises_the_thresholds() -> None:
    # In a child process: freezing this one would change every later test's collections.
    code = (
        "import gc; from workbench.core import gc_pauses; keep = [[i] for i in range(1000)]; "
        "gc_pauses.settle(); print(gc.get_freeze_count() >= 1000, gc.get_threshold())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split(maxsplit=1) == ["True", f"{gc_pauses.THRESHOLDS}\n"]
