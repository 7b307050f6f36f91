// TensorRT backend: runs a .plan made by `python -m hida_rt.build` (link the
// CMake target hida::tensorrt). The engine's custom layers are AOT plugins whose
// kernels are stored inside the engine, so no plugin library is loaded.
#pragma once

#include <string>

#include "hida/sketcher.h"

namespace hida {

struct TensorRTOptions {
  // Replay the engine as a CUDA graph (captured on first use for each batch
  // size): saves the per-layer launch cost, which dominates at batch 1.
  bool cuda_graph = false;
  // The GPU to run on (-1: the current device).
  int device_index = -1;
  // Refuse an engine without its manifest (<engine>.json beside it: hida_fp16.plan.json).
  // The manifest is how a TensorRT version or GPU mismatch gets a clear
  // message instead of a deserialization failure.
  bool require_manifest = true;
};

// Reads <engine>.json, checks it against this TensorRT and GPU, deserializes
// the engine; throws hida::Error naming what does not match.
Sketcher open_tensorrt(const std::string& engine_path, const TensorRTOptions& options = {});

}  // namespace hida
