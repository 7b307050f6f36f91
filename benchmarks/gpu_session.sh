#!/usr/bin/env bash
# hida_rt's GPU checks and benchmarks on this machine's GPU, results in one folder (docs/gpu.md).
#
#   bash benchmarks/gpu_session.sh --out DIR               # every step, in order of value
#   bash benchmarks/gpu_session.sh --out DIR compile       # only the named GPU steps
#   bash benchmarks/gpu_session.sh --help                  # the steps, their limits, the environment
#
# DIR defaults to benchmarks/results/gpu-session-<UTC date and time>. Exit code 0: every step ok; 1: a step
# failed or timed out; 3: no CUDA GPU here (after the install and import steps; one line says so).
# DIR/session.json has each step's status either way.
# No cd: a relative --out is relative to where you run this (the script runs its steps from the checkout).
exec "${PYTHON:-python3}" "$(dirname "$0")/gpu_session.py" "$@"
