#!/usr/bin/env bash
# Everything the test suite needs on a fresh machine (CPU):
#   - Debian: cmake, g++, ninja, stb and nlohmann-json, for the C++ embedding test (tests/cpp); chromium
#     for the browser tests (Playwright drives it; never `playwright install`, its download is unreachable);
#   - pip: hida_rt with its test, face, video, serve and ray extras, torch pinned to the local CPU build;
#   - pip --no-deps: MediaPipe 0.10.21 (the face front end; see pyproject.toml for why --no-deps);
#   - cached once per machine under ${HIDA_RT_CACHE:-~/.cache/hida_rt}: a current pip wheel (the offline
#     GPU-session test, tests/packaging) and a venv with Triton 3.6, the GPU image's (the PTX builds).
set -euo pipefail
cd "$(dirname "$0")/.."
apt_packages=(cmake g++ ninja-build libstb-dev nlohmann-json3-dev chromium)
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else sudo="none"; fi
if [ "$sudo" = none ]; then
    echo "install-test-deps: not root and no sudo; skipping apt (${apt_packages[*]}): tests/cpp and the browser tests will skip" >&2
else
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
python -m pip install -q torch==2.13.0 -e ".[test,face,video,serve,ray]"
python -m pip install -q --no-deps mediapipe==0.10.21

cache=${HIDA_RT_CACHE:-$HOME/.cache/hida_rt}
mkdir -p "$cache/wheels"
ls "$cache"/wheels/pip-2[5-9]*.whl >/dev/null 2>&1 || python -m pip download -q --no-deps "pip>=25.3" -d "$cache/wheels"
venv="$cache/venv-triton-3.6"
if ! "$venv/bin/python" -c "import triton; assert triton.__version__ == '3.6.0'" 2>/dev/null; then
    # On top of this environment (torch, this checkout's editable install), with its own Triton.
    python -m venv --system-site-packages "$venv"
    "$venv/bin/python" -m pip install -q triton==3.6.0
fi
