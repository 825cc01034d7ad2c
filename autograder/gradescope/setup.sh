#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image, after extracting the
# autograder zip into /autograder/source (Gradescope's autograder specification). It installs
# Python's venv module and the sandbox's tools (bubblewrap, util-linux's unshare) with apt, creates
# a virtual environment (Ubuntu 24.04's Python refuses system-wide pip installs, PEP 668), installs
# requirements.txt into it, and copies the helper package cs231n_style into it, readable by the
# unprivileged user that runs the students' code. The grader (autograder/, reference_solutions.py)
# stays in /autograder/source, which run_autograder makes unreadable to that user.
#
# For a fake layout (tests): AUTOGRADER_ROOT (default /autograder), AUTOGRADER_VENV (default
# /opt/cs231n-style-venv), AUTOGRADER_SKIP_APT=1 (no apt-get). pip reads its own PIP_* variables.
set -eu  # POSIX sh too, however Gradescope starts it
ROOT="${AUTOGRADER_ROOT:-/autograder}"
VENV="${AUTOGRADER_VENV:-/opt/cs231n-style-venv}"
SOURCE="$ROOT/source"
umask 022

if [ "${AUTOGRADER_SKIP_APT:-0}" != 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends python3 python3-venv bubblewrap util-linux
fi

python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --no-cache-dir -r "$SOURCE/requirements.txt"
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
rm -rf "$site/cs231n_style"
cp -r "$SOURCE/cs231n_style" "$site/"
chmod -R a+rX "$VENV"

# Fail the build here, where the instructor sees why, if the grader cannot import what it needs.
"$VENV/bin/python" -I -c '
import sys
sys.path.append(sys.argv[1])
import autograder.grader, autograder.packaging, autograder.report' "$SOURCE"
echo "setup.sh: the autograder's environment is ready in $VENV"
