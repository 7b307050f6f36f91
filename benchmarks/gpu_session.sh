#!/usr/bin/env bash
# One call on a lent GPU machine: offline install, GPU tests, benchmarks, all under $OUT (benchmarks/README.md).
#
#   bash tools/record-commit.sh               # before the call: .git does not travel (carry benchmarks/COMMIT)
#   bash benchmarks/gpu_session.sh            # every step, in order of value, within one 10-minute call
#   bash benchmarks/gpu_session.sh compile    # only the named GPU steps (e.g. a second call)
#   bash benchmarks/gpu_session.sh --help     # the steps, their limits, the environment
#
# Exit code 0: every step ok; 1: a step failed or timed out; 3: no CUDA GPU here (after the install and
# import steps; one line says so). $OUT/session.json has each step's status either way.
cd "$(dirname "$0")/.." || exit 1
exec "${PYTHON:-python3}" benchmarks/gpu_session.py "$@"
