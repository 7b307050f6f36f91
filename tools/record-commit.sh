#!/usr/bin/env bash
# Record the commit under test in benchmarks/COMMIT (git-ignored), for running the benchmarks from a copy of the
# tree without .git (e.g. copied to a GPU machine): benchmarks/gpu_session.sh reads this file when git cannot
# answer. Copy it along with the tree. "-dirty": the checkout had uncommitted changes.
set -euo pipefail
cd "$(dirname "$0")/.."
sha=$(git rev-parse HEAD)
[ -z "$(git status --porcelain --untracked-files=no)" ] || sha="$sha-dirty"
echo "$sha" > benchmarks/COMMIT
echo "benchmarks/COMMIT: $sha"
