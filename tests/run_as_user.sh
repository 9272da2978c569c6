#!/usr/bin/env bash
# Run the sandbox tests as an unprivileged user, creating the user if missing.
#
#   sudo bash tests/run_as_user.sh [extra pytest args...]
#
# Env: WB_TEST_USER (default wbtest), WB_VENV_PYTHON (default <repo>/.venv/bin/python),
# WB_USER_PYTHON (an interpreter the user can run, same X.Y as the venv; found if unset).
# The venv's own interpreter often lives under /root (pyenv), which the user cannot
# reach, so the tests run on a system interpreter of the same version with the venv's
# site-packages on PYTHONPATH; when the checkout or site-packages is unreadable to the
# user, both are copied under the user's home first. Exits with pytest's status.
set -euo pipefail

USER_NAME=${WB_TEST_USER:-wbtest}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV_PY=${WB_VENV_PYTHON:-$REPO/.venv/bin/python}

if [ "$(id -u)" != 0 ]; then
    echo "run_as_user.sh: run as root (it creates and switches to $USER_NAME)" >&2
    exit 2
fi
if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$USER_NAME"
fi
USER_HOME=$(getent passwd "$USER_NAME" | cut -d: -f6)

read -r PYVER SITE < <("$VENV_PY" -c \
    'import sys, sysconfig; print(f"{sys.version_info[0]}.{sys.version_info[1]}", sysconfig.get_paths()["purelib"])')

as_user() {
    # A clean environment: nothing of root's (tokens, HOME, XDG dirs) leaks into the run.
    su -s /bin/bash "$USER_NAME" -c "$(printf 'env -i HOME=%q USER=%q LOGNAME=%q PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 bash -c %q' \
        "$USER_HOME" "$USER_NAME" "$USER_NAME" "$1")"
}

USER_PY=${WB_USER_PYTHON:-}
if [ -z "$USER_PY" ]; then
    for cand in "/usr/bin/python$PYVER" "/usr/local/bin/python$PYVER"; do
        if [ -x "$cand" ] && as_user "'$cand' -c 'pass'" 2>/dev/null; then
            USER_PY=$cand
            break
        fi
    done
fi
if [ -z "$USER_PY" ]; then
    echo "run_as_user.sh: no python$PYVER that $USER_NAME can run; install python$PYVER or set WB_USER_PYTHON" >&2
    exit 2
fi

WORK=$REPO
SITE_DIR=$SITE
if ! as_user "test -r '$REPO/tests/test_sandbox_attacks.py' -a -r '$REPO/src/workbench/__init__.py'" 2>/dev/null \
   || ! as_user "test -r '$SITE/pytest/__init__.py'" 2>/dev/null; then
    WORK=$USER_HOME/wb-sandbox-run
    rm -rf "$WORK"
    mkdir -p "$WORK"
    cp -a "$REPO/src" "$REPO/tests" "$REPO/pyproject.toml" "$WORK/"
    if ! as_user "test -r '$SITE/pytest/__init__.py'" 2>/dev/null; then
        cp -a "$SITE" "$WORK/site-packages"
        SITE_DIR=$WORK/site-packages
    fi
    chown -R "$USER_NAME:" "$WORK"
fi

EXTRA=""
if [ $# -gt 0 ]; then EXTRA=$(printf ' %q' "$@"); fi
set +e
# The daemon's memory bound with 200k files does not depend on who runs it: root's run has it.
as_user "cd '$WORK' && PYTHONPATH='$WORK/src:$SITE_DIR' PYTHONDONTWRITEBYTECODE=1 '$USER_PY' -m pytest \
    -p no:cacheprovider tests/test_sandbox_attacks.py tests/test_sandbox_policy.py tests/test_host_boundary_attacks.py \
    tests/test_safe_fs.py tests/test_limits.py tests/test_patch_sandboxed.py tests/test_repo_trust.py tests/test_sandbox_loopback.py \
    tests/test_snapshot_helper.py tests/test_snapshot_import_checks.py \
    --deselect tests/test_host_boundary_attacks.py::test_huge_file_and_many_files_keep_the_daemon_small$EXTRA"
status=$?
set -e
exit $status
