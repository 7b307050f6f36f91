// The engine manifest and the checks made before an engine is deserialized.
// Plain C++ + nlohmann_json (no TensorRT, no CUDA), so it is tested on CPU
// against the manifests export/manifest.py writes (tests/cpp/test_trt_host.py).
//
// The manifest is `<engine>.json` beside the engine (hida_fp16.plan ->
// hida_fp16.plan.json), written by python -m hida_rt.build. Fields read:
//   "format": "hida_rt.tensorrt_engine", "format_version": 1,
//   "status": "built" | "unbuilt" (+ "missing", "finish_command"),
//   "tensorrt_version": "10.9.0.34", "compute_capability": "9.0", "gpu_name",
//   "weights_sha256" (reported only). Python's check_runnable() in
//   export/manifest.py makes the same refusals for the Python backend.
#pragma once

#include <string>

namespace hida {

struct EngineManifest {
  std::string tensorrt_version;  // as written, e.g. "10.9.0.34"
  int trt_major = 0, trt_minor = 0, trt_patch = 0;
  int cc_major = 0, cc_minor = 0;
  std::string gpu_name;
  std::string weights_sha256;
};

std::string manifest_path(const std::string& engine_path);

// Parses the manifest and refuses one that is not a built hida_rt engine's;
// throws hida::Error naming the file and the field.
EngineManifest read_manifest(const std::string& json_path);

// Throws hida::Error if the engine cannot run here: `trt_version` is what
// getInferLibVersion() returns (major * 10000 + minor * 100 + patch, TensorRT
// >= 10; the build number is not compared), cc_* the device's compute capability.
void check_manifest(const EngineManifest& manifest, const std::string& engine_path, long trt_version,
                    int cc_major, int cc_minor, const std::string& device_name);

}  // namespace hida
