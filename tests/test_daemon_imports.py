"""What a daemon start imports: every test and every user's first command pays for it."""

from __future__ import annotations

import subprocess
import sys

PROBE = (
    "import sys\n"
    "import importlib\n"
    "import workbench.daemon.server\n"
    "from workbench.daemon.extensions import EXTENSIONS\n"
    "for name in EXTENSIONS:\n"
    "    importlib.import_module(name)\n"
    "print(sorted({m.split('.')[0] for m in sys.modules} & {'acp', 'textual'}))\n"
)


def test_the_daemon_imports_the_acp_sdk_only_for_an_acp_session() -> None:
    # The SDK's schema module costs ~0.3 s of CPU at every daemon start otherwise.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]"]


def test_an_acp_runtime_is_still_found_for_an_acp_session() -> None:
    code = (
        "import sys\n"
        "from workbench.daemon import acp_ext\n"
        "assert 'acp' not in sys.modules\n"
        "from workbench.daemon.acp_session import AcpRuntime\n"
        "print('acp' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
