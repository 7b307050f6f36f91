#!/usr/bin/env bash
# One call on a lent GPU machine (../shared/gpu/README.md): install, GPU tests, benchmarks.
#
#   bash benchmarks/gpu_session.sh            # tests + kernel and model benchmarks (~6 min)
#   bash benchmarks/gpu_session.sh compile    # the torch.compile(max-autotune) peer (minutes per shape)
#   bash benchmarks/gpu_session.sh tests|bench
#
# Everything lands in $OUT (at most 8 files come back): tests.log, bench.log,
# bench.json + bench.md, nvidia-smi.txt, compile.log. Commit bench.json as
# benchmarks/results/<gpu>-<date>.json exactly as it came back, with its .md.
# $OUT starts empty on every call: to add the compile step to the first
# call's figures, put that file in the repo first and name it in BENCH_JSON
# (the harness merges results of the same device and commit into it):
#   BENCH_JSON=benchmarks/results/<gpu>-<date>.json bash benchmarks/gpu_session.sh compile
# Each step runs under its own timeout so one slow step cannot lose the others' files.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
step=${1:-all}
BENCH_JSON=${BENCH_JSON:-$OUT/bench.json}

python3 -m pip install -q -e . --no-deps >"$OUT/install.log" 2>&1 || { tail -20 "$OUT/install.log"; exit 1; }
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
python3 - <<'EOF' | tee -a "$OUT/nvidia-smi.txt"
import torch, triton
p = torch.cuda.get_device_properties(0)
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), triton {triton.__version__}, "
      f"{p.name}, {p.multi_processor_count} SMs, cc {p.major}.{p.minor}")
EOF

rc=0
if [[ $step == all || $step == tests ]]; then
  # L3 on the device (full layer shapes, FP16 and FP32), the PTX checks, and the backend parity tests.
  timeout 240 python3 -m pytest tests/kernels tests/backends/test_triton_backend.py -q -rs -p no:cacheprovider \
    2>&1 | tee "$OUT/tests.log" | tail -25
  rc=$((rc || PIPESTATUS[0]))
fi
if [[ $step == all || $step == bench ]]; then
  HIDA_BENCH_PEERS=eager-fp32,eager-fp16,eager-fp16-graph,triton-fp16 \
  timeout 300 python3 -m pytest benchmarks/bench_kernels.py benchmarks/bench_model.py --benchmark-only \
    --bench-results "$BENCH_JSON" -q -p no:cacheprovider --benchmark-columns=median,min,rounds \
    >"$OUT/bench.log" 2>&1
  rc=$((rc || $?))
  tail -5 "$OUT/bench.log"
fi
if [[ $step == compile ]]; then
  HIDA_BENCH_PEERS=compile-fp16 \
  timeout 560 python3 -m pytest benchmarks/bench_model.py --benchmark-only --bench-results "$BENCH_JSON" \
    -q -p no:cacheprovider >"$OUT/compile.log" 2>&1
  rc=$((rc || $?))
  tail -5 "$OUT/compile.log"
fi
if [[ -f $BENCH_JSON ]]; then
  [[ $BENCH_JSON -ef $OUT/bench.json ]] || cp "$BENCH_JSON" "$OUT/bench.json"
  python3 benchmarks/report.py "$OUT/bench.json" -o "$OUT/bench.md" && cat "$OUT/bench.md"
fi
rm -f "$OUT/install.log"
exit $rc
