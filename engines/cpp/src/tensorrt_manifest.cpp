#include "tensorrt_manifest.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hida/sketcher.h"

namespace hida {
namespace {

using nlohmann::json;

const char* kRebuild = "rebuild it on this machine with python -m hida_rt.build";

// "9.0", [9, 0] or 9.0 -> (9, 0).
bool parse_capability(const json& v, int& major, int& minor) {
  if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer()) {
    major = v[0].get<int>();
    minor = v[1].get<int>();
    return true;
  }
  std::string text;
  if (v.is_string()) text = v.get<std::string>();
  else if (v.is_number()) {
    std::ostringstream s;
    s << v.get<double>();
    text = s.str();
    if (text.find('.') == std::string::npos) text += ".0";
  } else {
    return false;
  }
  char dot = 0;
  std::istringstream in(text);
  return static_cast<bool>(in >> major >> dot >> minor) && dot == '.' && in.peek() == EOF;
}

// "10.9.0" or "10.9.0.34" -> (10, 9, 0); the build number does not matter.
bool parse_version(const std::string& text, int& major, int& minor, int& patch) {
  std::istringstream in(text);
  char d1 = 0, d2 = 0;
  return static_cast<bool>(in >> major >> d1 >> minor >> d2 >> patch) && d1 == '.' && d2 == '.';
}

}  // namespace

EngineManifest read_manifest(const std::string& json_path) {
  std::ifstream f(json_path);
  if (!f) throw Error(json_path + ": engine manifest not found (python -m hida_rt.build writes it beside the .plan)");
  json j;
  try {
    j = json::parse(f);
  } catch (const json::exception& e) {
    throw Error(json_path + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw Error(json_path + ": expected a JSON object");
  EngineManifest m;
  if (!j.contains("tensorrt_version") || !j["tensorrt_version"].is_string() ||
      !parse_version(j["tensorrt_version"].get<std::string>(), m.trt_major, m.trt_minor, m.trt_patch)) {
    throw Error(json_path + ": missing or unreadable \"tensorrt_version\" (expected like \"10.9.0\")");
  }
  const json* cc = nullptr;
  if (j.contains("gpu") && j["gpu"].is_object()) {
    const json& gpu = j["gpu"];
    if (gpu.contains("name") && gpu["name"].is_string()) m.gpu_name = gpu["name"].get<std::string>();
    if (gpu.contains("compute_capability")) cc = &gpu["compute_capability"];
  }
  if (!cc && j.contains("compute_capability")) cc = &j["compute_capability"];
  if (!cc || !parse_capability(*cc, m.cc_major, m.cc_minor)) {
    throw Error(json_path + ": missing or unreadable GPU \"compute_capability\" (expected like \"9.0\")");
  }
  if (j.contains("weights_sha256") && j["weights_sha256"].is_string()) {
    m.weights_sha256 = j["weights_sha256"].get<std::string>();
  }
  return m;
}

void check_manifest(const EngineManifest& m, const std::string& engine_path, long trt_version, int cc_major,
                    int cc_minor, const std::string& device_name) {
  const int major = static_cast<int>(trt_version / 10000), minor = static_cast<int>(trt_version / 100 % 100),
            patch = static_cast<int>(trt_version % 100);
  // A plan is only guaranteed to load in the TensorRT release that built it.
  if (m.trt_major != major || m.trt_minor != minor || m.trt_patch != patch) {
    throw Error(engine_path + ": engine built with TensorRT " + std::to_string(m.trt_major) + "." +
                std::to_string(m.trt_minor) + "." + std::to_string(m.trt_patch) + " but this program runs TensorRT " +
                std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch) + "; " + kRebuild);
  }
  // Kernels (TensorRT's tactics and the plugins' PTX/cubin) are chosen for one SM version.
  if (m.cc_major != cc_major || m.cc_minor != cc_minor) {
    throw Error(engine_path + ": engine built for compute capability " + std::to_string(m.cc_major) + "." +
                std::to_string(m.cc_minor) + (m.gpu_name.empty() ? "" : " (" + m.gpu_name + ")") + " but " +
                device_name + " is " + std::to_string(cc_major) + "." + std::to_string(cc_minor) + "; " + kRebuild);
  }
}

}  // namespace hida
