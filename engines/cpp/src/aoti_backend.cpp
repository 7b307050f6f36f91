// hida::open_aoti: a .pt2 package run by LibTorch's AOTIModelPackageLoader.
// The only translation unit that includes LibTorch headers (they are slow to
// compile, and users of the other backends need not have them).
#include <ATen/ATen.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <fstream>
#include <string>
#include <unordered_map>

#include "hida/aoti.h"

#if defined(HIDA_AOTI_CUDA)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace hida {
namespace {

// The metadata format export/aoti.py writes (its FORMAT_VERSION).
constexpr const char* kFormatVersion = "1";

int metadata_int(std::unordered_map<std::string, std::string>& meta, const std::string& key, const std::string& path) {
  try {
    return std::stoi(meta.at(key));
  } catch (const std::exception&) {
    throw Error(path + ": package metadata " + key + " is missing or not a number; re-export it");
  }
}

std::string first_line(const std::string& text) {
  const std::string line = text.substr(0, text.find('\n'));
  return line.size() > 200 ? line.substr(0, 200) + "..." : line;
}

class AotiBackend : public Backend {
 public:
  AotiBackend(const std::string& path, const AotiOptions& options) : path_(path), device_(at::kCPU) {
    if (!std::ifstream(path).good()) throw Error(path + ": no such file (make one with python -m hida_rt.export --format pt2)");
    std::unordered_map<std::string, std::string> meta;
    try {
      meta = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(path, "model");
    } catch (const std::exception& e) {
      throw Error(path + ": not an AOTInductor package (" + first_line(e.what()) + ")");
    }
    if (meta.count("hida.format_version") == 0) {
      throw Error(path + ": an AOTInductor package, but not one made by python -m hida_rt.export --format pt2");
    }
    if (meta["hida.format_version"] != kFormatVersion) {
      throw Error(path + ": package format " + meta["hida.format_version"] + ", this library reads " +
                  kFormatVersion + "; re-export it with this version of hida_rt");
    }
    height_ = metadata_int(meta, "hida.height", path);
    width_ = metadata_int(meta, "hida.width", path);
    dynamic_ = meta["hida.batch"] == "dynamic";
    batch_ = metadata_int(meta, "hida.max_batch", path);
    const std::string device = meta["hida.device"];
    if (device == "cuda") {
#if defined(HIDA_AOTI_CUDA)
      device_ = at::Device(at::kCUDA, options.device_index < 0 ? c10::cuda::current_device()
                                                              : static_cast<c10::DeviceIndex>(options.device_index));
#else
      (void)options;
      throw Error(path + ": a CUDA package, but this build of hida::aoti uses a CPU-only LibTorch");
#endif
    } else if (device != "cpu") {
      throw Error(path + ": package for device '" + device + "', expected cpu or cuda");
    }
    try {
      loader_ = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
          path, "model", /*run_single_threaded=*/false, /*num_runners=*/1,
          device_.is_cuda() ? device_.index() : static_cast<c10::DeviceIndex>(-1));
    } catch (const std::exception& e) {
      // Typically a package compiled for another CPU ISA or GPU architecture, or another torch version.
      throw Error(path + ": cannot load the compiled model (" + first_line(e.what()) + "); it was made with torch " +
                  meta["hida.torch_version"] + " for " + device + ", re-export it on this machine");
    }
  }

  std::string name() const override { return std::string("aoti-") + (device_.is_cuda() ? "cuda" : "cpu"); }
  int height() const override { return height_; }
  int width() const override { return width_; }
  int max_batch() const override { return batch_; }

  void run(const float* photo, const float* depth, const float* style, int n, float* sketch, Memory memory,
           void* stream) override {
    if (memory == Memory::Device && !device_.is_cuda()) {
      throw Error(path_ + ": a CPU package cannot take device pointers; use Sketcher::sketch with host buffers");
    }
#if defined(HIDA_AOTI_CUDA)
    // Copies and padding below run on the caller's stream, in order with the model.
    c10::cuda::CUDAStreamGuard guard(
        stream ? c10::cuda::getStreamFromExternal(static_cast<cudaStream_t>(stream), device_.index())
               : c10::cuda::getCurrentCUDAStream(device_.index()));
#endif
    const at::Device where = memory == Memory::Device ? device_ : at::Device(at::kCPU);
    const auto opts = at::TensorOptions().dtype(at::kFloat).device(where);
    // from_blob wraps the caller's memory; the model reads its inputs and never writes them.
    std::vector<at::Tensor> inputs = {
        at::from_blob(const_cast<float*>(photo), {n, 3, height_, width_}, opts),
        at::from_blob(const_cast<float*>(depth), {n, 1, height_, width_}, opts),
        at::from_blob(const_cast<float*>(style), {n, 3}, opts)};
    const int64_t run_n = dynamic_ ? n : batch_;
    for (at::Tensor& t : inputs) {
      if (run_n != n) {
        // A fixed-batch package: zero-pad the last chunk. Each image is normalised
        // on its own (instance norm), so padding never changes the real ones.
        std::vector<int64_t> shape = t.sizes().vec();
        shape[0] = run_n;
        at::Tensor padded = at::zeros(shape, t.options().device(device_));
        padded.narrow(0, 0, n).copy_(t);
        t = padded;
      } else {
        t = t.to(device_);
      }
    }
    std::vector<at::Tensor> out;
    try {
      out = loader_->run(inputs, stream);
    } catch (const std::exception& e) {
      throw Error(path_ + ": model run failed (" + first_line(e.what()) + ")");
    }
    at::from_blob(sketch, {n, 1, height_, width_}, opts).copy_(out.at(0).narrow(0, 0, n));
#if defined(HIDA_AOTI_CUDA)
    if (device_.is_cuda()) c10::cuda::getCurrentCUDAStream(device_.index()).synchronize();
#endif
  }

 private:
  std::string path_;
  at::Device device_;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader_;
  int height_ = 0, width_ = 0, batch_ = 1;
  bool dynamic_ = false;
};

}  // namespace

Sketcher open_aoti(const std::string& package_path, const AotiOptions& options) {
  return Sketcher(std::make_unique<AotiBackend>(package_path, options));
}

}  // namespace hida
