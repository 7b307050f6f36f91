#include "tensorrt_manifest.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hida/sketcher.h"

namespace hida {
namespace {

using nlohmann::json;

// export/manifest.py's FORMAT and FORMAT_VERSION.
const char* kFormat = "hida_rt.tensorrt_engine";
constexpr int kFormatVersion = 1;
const char* kRebuild = "rebuild it here with python -m hida_rt.build";

std::string text_field(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

// "10.9.0.34" or "10.9.0" -> (10, 9, 0).
bool parse_version(const std::string& text, int& major, int& minor, int& patch) {
  std::istringstream in(text);
  char d1 = 0, d2 = 0;
  return static_cast<bool>(in >> major >> d1 >> minor >> d2 >> patch) && d1 == '.' && d2 == '.';
}

// "9.0" -> (9, 0).
bool parse_capability(const std::string& text, int& major, int& minor) {
  std::istringstream in(text);
  char dot = 0;
  return static_cast<bool>(in >> major >> dot >> minor) && dot == '.' && in.peek() == EOF;
}

std::string version_text(int major, int minor, int patch) {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

}  // namespace

std::string manifest_path(const std::string& engine_path) { return engine_path + ".json"; }

EngineManifest read_manifest(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": no manifest beside the engine (python -m hida_rt.build writes <engine>.json)");
  json j;
  try {
    j = json::parse(f);
  } catch (const json::exception& e) {
    throw Error(path + ": unreadable manifest, not valid JSON (" + std::string(e.what()).substr(0, 120) + ")");
  }
  auto bad = [&](const std::string& what) { return Error(path + ": " + what + "; " + kRebuild); };
  if (!j.is_object() || text_field(j, "format") != kFormat) throw bad(std::string("not a ") + kFormat + " manifest");
  if (!j.contains("format_version") || j["format_version"] != kFormatVersion) {
    throw bad("manifest format version is not " + std::to_string(kFormatVersion));
  }
  const std::string status = text_field(j, "status");
  if (status != "built") {
    const std::string missing = text_field(j, "missing"), finish = text_field(j, "finish_command");
    throw Error(path + ": the engine was never built (" + (missing.empty() ? "no engine" : missing) + ")" +
                (finish.empty() ? "" : "; finish the build on a machine with TensorRT and a GPU: " + finish));
  }
  EngineManifest m;
  m.tensorrt_version = text_field(j, "tensorrt_version");
  if (!parse_version(m.tensorrt_version, m.trt_major, m.trt_minor, m.trt_patch)) {
    throw bad("missing or unreadable \"tensorrt_version\" (expected like \"10.9.0.34\")");
  }
  if (!parse_capability(text_field(j, "compute_capability"), m.cc_major, m.cc_minor)) {
    throw bad("missing or unreadable \"compute_capability\" (expected like \"9.0\")");
  }
  m.gpu_name = text_field(j, "gpu_name");
  m.weights_sha256 = text_field(j, "weights_sha256");
  return m;
}

void check_manifest(const EngineManifest& m, const std::string& engine_path, long trt_version, int cc_major,
                    int cc_minor, const std::string& device_name) {
  const int major = static_cast<int>(trt_version / 10000), minor = static_cast<int>(trt_version / 100 % 100),
            patch = static_cast<int>(trt_version % 100);
  // A plan loads only in the TensorRT release that built it.
  if (m.trt_major != major || m.trt_minor != minor || m.trt_patch != patch) {
    throw Error(engine_path + ": built with TensorRT " + m.tensorrt_version + ", this is TensorRT " +
                version_text(major, minor, patch) + " (engines run only under the version that built them); " +
                kRebuild);
  }
  // TensorRT's tactics and the plugins' kernels are compiled for one SM version.
  if (m.cc_major != cc_major || m.cc_minor != cc_minor) {
    throw Error(engine_path + ": built for " + (m.gpu_name.empty() ? "a GPU" : m.gpu_name) + " (compute capability " +
                std::to_string(m.cc_major) + "." + std::to_string(m.cc_minor) + "), this GPU is " + device_name +
                " (compute capability " + std::to_string(cc_major) + "." + std::to_string(cc_minor) + "); " + kRebuild);
  }
}

}  // namespace hida
