#!/usr/bin/env bash
# Everything the test suite needs on a fresh machine (CPU):
#   - Debian: cmake, g++, ninja, stb and nlohmann-json, for the C++ embedding test (tests/cpp);
#   - pip: hida_rt with its test, face and video extras, torch pinned to the local CPU build;
#   - pip --no-deps: MediaPipe 0.10.21 (the face front end; see setup.py for why --no-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
apt_packages=(cmake g++ ninja-build libstb-dev nlohmann-json3-dev)
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else sudo="none"; fi
if [ "$sudo" = none ]; then
    echo "install-test-deps: not root and no sudo; skipping apt (${apt_packages[*]}): tests/cpp will skip" >&2
else
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
python -m pip install -q torch==2.13.0 -e ".[test,face,video]"
python -m pip install -q --no-deps mediapipe==0.10.21
