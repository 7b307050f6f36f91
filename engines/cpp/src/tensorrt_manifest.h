// The engine manifest (<engine>.json, written by python -m hida_rt.build) and
// the checks made before an engine is deserialized. Plain C++ + nlohmann_json:
// no TensorRT or CUDA, so it compiles and can be tested on any machine.
//
// Fields read (others are ignored):
//   "tensorrt_version": "10.9.0" or "10.9.0.34"   (required)
//   "gpu": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0" | [9, 0] | 9.0}
//       or "compute_capability" at top level       (required)
//   "weights_sha256": "..."                        (reported, not checked)
#pragma once

#include <string>

namespace hida {

struct EngineManifest {
  int trt_major = 0, trt_minor = 0, trt_patch = 0;
  int cc_major = 0, cc_minor = 0;
  std::string gpu_name;
  std::string weights_sha256;
};

// Parses the manifest file; throws hida::Error naming the file and the bad field.
EngineManifest read_manifest(const std::string& json_path);

// Throws hida::Error if the engine cannot run here: `trt_version` is what
// getInferLibVersion() returns (major * 10000 + minor * 100 + patch, TensorRT >= 10),
// cc_* the device's compute capability. Engines are tied to both.
void check_manifest(const EngineManifest& manifest, const std::string& engine_path, long trt_version,
                    int cc_major, int cc_minor, const std::string& device_name);

}  // namespace hida
