#!/usr/bin/env bash
# Downloads into .whl/ the wheels that the lent GPU machine lacks, for Python 3.12 on
# x86-64 Linux: xdsl and lark and their pure-Python needs (typing-extensions travels too,
# since xdsl needs >= 4.13 and the image's version is not known; numpy, jax, optax, rich,
# scipy and pytest are in the image). All are pure Python, about 4.6 MB together.
# Halide is not among them: its wheel is far larger than what travels with a device
# call, and annc runs without it (the Halide variants are then not registered).
#
#     scripts/gpu_wheels.sh            # run in the repository root, with network
#
# .whl/ is ignored through .git/info/exclude (this script adds the line if missing);
# scripts/gpu_run.sh installs the wheels on the device machine.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

WHEELS=(xdsl==0.74.0 lark==1.3.1 immutabledict==4.3.1 ordered-set==4.1.0 typing-extensions==4.16.0)
PYTHON=${PYTHON:-python3}

exclude="$(git rev-parse --git-common-dir)/info/exclude"
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"

rm -rf .whl
"$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"

ls -l .whl
du -sh .whl
