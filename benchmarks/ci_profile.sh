#!/usr/bin/env bash
# Time each section of .ci/run separately and list the slowest tests (docs/testing.md, "CI
# timings"). Run it as root on a quiet machine: it does what CI does, plus a fresh-venv
# install into a temporary directory so the install step is timed as on a new machine.
#
#   bash benchmarks/ci_profile.sh [OUT_DIR]      (default benchmarks/out/ci_profile)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/out/ci_profile}
mkdir -p "$OUT"
: > "$OUT/sections.tsv"

section() {  # section NAME COMMAND...: run it, log its output, record its wall time
    local name=$1 start ms rc
    shift
    start=$(date +%s%N)
    "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    printf '%s\t%d.%01d s\texit %s\n' "$name" $((ms / 1000)) $((ms % 1000 / 100)) "$rc" | tee -a "$OUT/sections.tsv"
}

apt_check() {
    for pkg in bubblewrap slirp4netns tmux git make; do dpkg -s "$pkg" >/dev/null 2>&1 || return 1; done
}
VENV_TMP=$(mktemp -d /tmp/wb-ci-venv.XXXXXX)
trap 'rm -rf "$VENV_TMP"' EXIT

section apt_check apt_check
section codex_check sh -c 'command -v codex >/dev/null && codex --version'
# The Makefile's install, into throw-away venvs.
section venv_create python3 -m venv "$VENV_TMP/venv"
section pip_upgrade "$VENV_TMP/venv/bin/python" -m pip install --quiet --upgrade pip
# Cold: nothing cached, as on a new machine. Warm: a second venv with pip's cache filled,
# as on a machine that ran CI before.
section pip_install_cold "$VENV_TMP/venv/bin/python" -m pip install --quiet --no-cache-dir -e '.[dev]'
section venv_create_2 python3 -m venv "$VENV_TMP/venv2"
section pip_install_warm "$VENV_TMP/venv2/bin/python" -m pip install --quiet -e '.[dev]'
# The suite exactly as `make test` runs it, with per-test durations and a JUnit report.
section pytest make test PYTEST_ARGS="-q --durations=25 --junitxml=$OUT/junit.xml"
if [ -f tests/run_as_user.sh ] && [ "$(id -u)" = 0 ]; then
    section attacks_as_user bash tests/run_as_user.sh -q -n 2
fi

echo "--- slowest tests (from pytest --durations)"
sed -n '/slowest 25 durations/,/^=/p' "$OUT/pytest.log" | head -30
echo "--- slowest test files (sum of test times, from the JUnit report)"
.venv/bin/python - "$OUT/junit.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET
from collections import Counter

per_file: Counter[str] = Counter()
for case in ET.parse(sys.argv[1]).iter("testcase"):
    per_file[".".join(case.get("classname", "?").split(".")[:2])] += float(case.get("time", 0))
for name, secs in per_file.most_common(10):
    print(f"{secs:8.1f} s  {name}")
print(f"{sum(per_file.values()):8.1f} s  all tests (summed over workers)")
EOF
