#!/usr/bin/env bash
# Record the commit under test in benchmarks/COMMIT (git-ignored) before lending the tree to a GPU machine:
# .git does not travel there, so benchmarks/gpu_session.sh reads this file instead. Carry it with the call
# (it is ignored, so it travels only when named: carry=["benchmarks/COMMIT"]). "-dirty": uncommitted changes.
set -euo pipefail
cd "$(dirname "$0")/.."
sha=$(git rev-parse HEAD)
[ -z "$(git status --porcelain --untracked-files=no)" ] || sha="$sha-dirty"
echo "$sha" > benchmarks/COMMIT
echo "benchmarks/COMMIT: $sha"
