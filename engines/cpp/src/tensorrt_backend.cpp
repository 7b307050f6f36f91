// hida::open_tensorrt: a TensorRT (>= 10.9) engine run with the runtime API
// (enqueueV3 on a CUDA stream, optionally replayed as a CUDA graph).
// Written against the documented 10.x runtime API; enums are used by name
// only, as their values moved between TensorRT 10 and 11.
//
// Batches run in fixed buckets (batch_buckets.h: 1, 2, 4, ... up to the
// engine's max batch), each with its own execution context whose input shape
// is set once and never changed, and its own CUDA graph; a batch is padded
// with zero rows up to its bucket. Changing a context's input shape makes engines with ahead-of-time
// plugins load their CUDA modules again without freeing the old ones
// (TensorRT issue 4849), so a server whose batch sizes vary would grow
// without bound; and a graph captured at one shape is never replayed at another.
#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "batch_buckets.h"
#include "half.h"
#include "hida/tensorrt.h"
#include "tensorrt_manifest.h"

namespace hida {
namespace {

void check_cuda(cudaError_t status, const std::string& what) {
  if (status != cudaSuccess) throw Error(what + ": CUDA error " + cudaGetErrorString(status));
}

// TensorRT reports through a logger; warnings go to stderr and the last error
// is kept so a failed call can say why in its one-line exception.
class Logger : public nvinfer1::ILogger {
 public:
  void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override {
    if (severity == Severity::kINTERNAL_ERROR || severity == Severity::kERROR) {
      last_error = msg;
    } else if (severity == Severity::kWARNING) {
      std::fprintf(stderr, "TensorRT: %s\n", msg);
    }
  }
  std::string last_error;
};

struct DeviceFree {
  void operator()(void* p) const { cudaFree(p); }
};
struct PinnedFree {
  void operator()(void* p) const { cudaFreeHost(p); }
};
struct StreamDestroy {
  void operator()(cudaStream_t s) const { cudaStreamDestroy(s); }
};
struct GraphExecDestroy {
  void operator()(cudaGraphExec_t g) const { cudaGraphExecDestroy(g); }
};
struct ContextDelete {
  void operator()(nvinfer1::IExecutionContext* c) const { delete c; }  // TensorRT >= 10: delete, not destroy()
};

// One batch bucket: a context whose input shape is the bucket's, set once, and the graph captured on it.
struct Bucket {
  int batch = 0;
  std::unique_ptr<nvinfer1::IExecutionContext, ContextDelete> context;
  std::unique_ptr<CUgraphExec_st, GraphExecDestroy> graph;
};

// One I/O tensor: its name, element type, elements per image and buffers for the largest batch.
struct Binding {
  std::string name;
  bool half = false;
  std::size_t per_image = 0;
  std::unique_ptr<void, DeviceFree> device;
  std::unique_ptr<void, PinnedFree> pinned;  // host staging: pinned memory makes the copies truly async
  std::size_t bytes(int n) const { return per_image * n * (half ? 2 : 4); }
};

class TensorRTBackend : public Backend {
 public:
  TensorRTBackend(const std::string& path, const TensorRTOptions& options) : path_(path), use_graph_(options.cuda_graph) {
    if (options.device_index >= 0) check_cuda(cudaSetDevice(options.device_index), "cudaSetDevice");
    check_cuda(cudaGetDevice(&device_), "cudaGetDevice");
    cudaDeviceProp prop{};
    check_cuda(cudaGetDeviceProperties(&prop, device_), "cudaGetDeviceProperties");

    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": no such engine file (build one with python -m hida_rt.build)");
    const std::string manifest = manifest_path(path);
    if (options.require_manifest || std::ifstream(manifest).good()) {
      check_manifest(read_manifest(manifest), path, static_cast<long>(getInferLibVersion()), prop.major,
                     prop.minor, prop.name);
    }
    const std::vector<char> blob((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());

    runtime_.reset(nvinfer1::createInferRuntime(logger_));
    if (!runtime_) throw Error("cannot create the TensorRT runtime (" + logger_.last_error + ")");
    engine_.reset(runtime_->deserializeCudaEngine(blob.data(), blob.size()));
    if (!engine_) throw Error(path + ": TensorRT cannot deserialize the engine (" + logger_.last_error + ")");
    bind_tensors();
    for (int b : batch_buckets(min_batch_, max_batch_)) buckets_.emplace_back().batch = b;
    cudaStream_t stream = nullptr;
    check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");  // blocking: ordered with the legacy default stream
    stream_.reset(stream);
  }

  std::string name() const override { return use_graph_ ? "tensorrt-graph" : "tensorrt"; }
  int height() const override { return height_; }
  int width() const override { return width_; }
  int max_batch() const override { return max_batch_; }

  void run(const float* photo, const float* depth, const float* style, int n, float* sketch, Memory memory,
           void* user_stream) override {
    check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    if (n < min_batch_ || n > max_batch_) {
      throw Error(path_ + ": the engine takes batches of " + std::to_string(min_batch_) + " to " +
                  std::to_string(max_batch_) + ", got " + std::to_string(n));
    }
    Bucket& bucket = bucket_for(n);
    nvinfer1::IExecutionContext* context = bucket.context.get();
    const bool on_device = memory == Memory::Device;
    if (on_device && (photo_.half || depth_.half || style_.half || sketch_.half)) {
      throw Error(path_ + ": the engine's inputs/outputs are FP16; pass host buffers (converted here) instead of "
                          "float32 device pointers");
    }
    // Graph capture needs a non-default stream; a null user stream means ours.
    cudaStream_t s = on_device && user_stream ? static_cast<cudaStream_t>(user_stream) : stream_.get();
    const float* inputs[3] = {photo, depth, style};
    Binding* in_bindings[3] = {&photo_, &depth_, &style_};
    // Without a graph, device buffers of exactly a bucket's batch are bound directly; a graph needs fixed
    // addresses and a padded batch needs room for its zero rows, so those are copied into ours.
    const bool direct = on_device && !use_graph_ && n == bucket.batch;
    for (int i = 0; i < 3; ++i) {
      Binding& b = *in_bindings[i];
      if (direct) {
        set_address(context, b, const_cast<float*>(inputs[i]));
        continue;
      }
      set_address(context, b, b.device.get());
      if (on_device) {
        check_cuda(cudaMemcpyAsync(b.device.get(), inputs[i], b.bytes(n), cudaMemcpyDeviceToDevice, s), "input copy");
      } else {
        stage_input(b, inputs[i], n);
        check_cuda(cudaMemcpyAsync(b.device.get(), b.pinned.get(), b.bytes(n), cudaMemcpyHostToDevice, s), "input upload");
      }
      if (bucket.batch > n) {  // the padding rows: zeros, whose sketches are dropped
        check_cuda(cudaMemsetAsync(static_cast<char*>(b.device.get()) + b.bytes(n), 0, b.bytes(bucket.batch) - b.bytes(n), s),
                   "input padding");
      }
    }
    set_address(context, sketch_, direct ? static_cast<void*>(sketch) : sketch_.device.get());
    if (use_graph_) {
      if (!bucket.graph) capture_graph(bucket, s);
      check_cuda(cudaGraphLaunch(bucket.graph.get(), s), "cudaGraphLaunch");
    } else if (!context->enqueueV3(s)) {
      throw Error(path_ + ": enqueueV3 failed (" + logger_.last_error + ")");
    }
    if (on_device && !direct) {
      check_cuda(cudaMemcpyAsync(sketch, sketch_.device.get(), sketch_.bytes(n), cudaMemcpyDeviceToDevice, s), "output copy");
    } else if (!on_device) {
      check_cuda(cudaMemcpyAsync(sketch_.pinned.get(), sketch_.device.get(), sketch_.bytes(n), cudaMemcpyDeviceToHost, s),
                 "output download");
    }
    check_cuda(cudaStreamSynchronize(s), path_ + ": inference");
    if (!on_device) unstage_output(sketch, n);
  }

 private:
  template <class T>
  struct Deleter {
    void operator()(T* p) const { delete p; }  // TensorRT >= 10 objects are deleted, not destroy()ed
  };

  void bind_tensors() {
    const char* names[4] = {"photo", "depth", "style", "sketch"};
    Binding* bindings[4] = {&photo_, &depth_, &style_, &sketch_};
    std::string found;
    for (int i = 0; i < engine_->getNbIOTensors(); ++i) found += std::string(i ? ", " : "") + engine_->getIOTensorName(i);
    for (int k = 0; k < 4; ++k) {
      bool present = false;
      for (int i = 0; i < engine_->getNbIOTensors(); ++i) present |= names[k] == std::string(engine_->getIOTensorName(i));
      const bool want_input = k < 3;
      if (!present || (engine_->getTensorIOMode(names[k]) == nvinfer1::TensorIOMode::kINPUT) != want_input) {
        throw Error(path_ + ": expected inputs photo, depth, style and output sketch; the engine has " + found);
      }
      Binding& b = *bindings[k];
      b.name = names[k];
      const nvinfer1::DataType type = engine_->getTensorDataType(names[k]);
      if (type != nvinfer1::DataType::kFLOAT && type != nvinfer1::DataType::kHALF) {
        throw Error(path_ + ": tensor " + b.name + " is neither FP32 nor FP16");
      }
      b.half = type == nvinfer1::DataType::kHALF;
    }
    const nvinfer1::Dims shape = engine_->getTensorShape("photo");
    if (shape.nbDims != 4 || shape.d[2] <= 0 || shape.d[3] <= 0) {
      throw Error(path_ + ": photo must be N x 3 x H x W with a fixed H x W");
    }
    height_ = static_cast<int>(shape.d[2]);
    width_ = static_cast<int>(shape.d[3]);
    if (shape.d[0] > 0) {
      min_batch_ = max_batch_ = static_cast<int>(shape.d[0]);
    } else {
      min_batch_ = static_cast<int>(engine_->getProfileShape("photo", 0, nvinfer1::OptProfileSelector::kMIN).d[0]);
      max_batch_ = static_cast<int>(engine_->getProfileShape("photo", 0, nvinfer1::OptProfileSelector::kMAX).d[0]);
    }
    const std::size_t plane = std::size_t(height_) * width_;
    photo_.per_image = 3 * plane;
    depth_.per_image = plane;
    style_.per_image = 3;
    sketch_.per_image = plane;
    for (Binding* b : bindings) {
      void* p = nullptr;
      check_cuda(cudaMalloc(&p, b->bytes(max_batch_)), "cudaMalloc " + b->name);
      b->device.reset(p);
      check_cuda(cudaMallocHost(&p, b->bytes(max_batch_)), "cudaMallocHost " + b->name);
      b->pinned.reset(p);
    }
  }

  void set_address(nvinfer1::IExecutionContext* context, Binding& b, void* ptr) {
    if (!context->setTensorAddress(b.name.c_str(), ptr)) {
      throw Error(path_ + ": cannot bind tensor " + b.name + " (" + logger_.last_error + ")");
    }
  }

  // The smallest bucket that holds n images; its context is made, and its input shape set, on first use.
  Bucket& bucket_for(int n) {
    std::vector<int> sizes;
    for (const Bucket& b : buckets_) sizes.push_back(b.batch);
    Bucket* bucket = &buckets_[bucket_index(sizes, n)];
    if (!bucket->context) {
      bucket->context.reset(engine_->createExecutionContext());
      if (!bucket->context) throw Error(path_ + ": cannot create an execution context (" + logger_.last_error + ")");
      for (Binding* b : {&photo_, &depth_, &style_}) {
        nvinfer1::Dims dims = engine_->getTensorShape(b->name.c_str());
        dims.d[0] = bucket->batch;
        if (!bucket->context->setInputShape(b->name.c_str(), dims)) {
          throw Error(path_ + ": batch " + std::to_string(bucket->batch) + " rejected for " + b->name + " (" +
                      logger_.last_error + ")");
        }
      }
    }
    return *bucket;
  }

  // A graph fixes shapes and addresses: capture once per bucket, after one
  // ordinary enqueue has done TensorRT's lazy per-shape setup outside the capture.
  void capture_graph(Bucket& bucket, cudaStream_t s) {
    nvinfer1::IExecutionContext* context = bucket.context.get();
    if (!context->enqueueV3(s)) throw Error(path_ + ": enqueueV3 failed (" + logger_.last_error + ")");
    check_cuda(cudaStreamSynchronize(s), "warm-up run");
    check_cuda(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    const bool ok = context->enqueueV3(s);
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(s, &graph);
    if (!ok || end != cudaSuccess) {
      if (graph) cudaGraphDestroy(graph);
      throw Error(path_ + ": this engine cannot be captured as a CUDA graph (" +
                  (ok ? std::string(cudaGetErrorString(end)) : logger_.last_error) + "); run without --cuda-graph");
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check_cuda(inst, "cudaGraphInstantiate");
    bucket.graph.reset(exec);
  }

  void stage_input(Binding& b, const float* src, int n) {
    const std::size_t count = b.per_image * n;
    if (!b.half) {
      std::memcpy(b.pinned.get(), src, count * sizeof(float));
      return;
    }
    auto* dst = static_cast<std::uint16_t*>(b.pinned.get());
    for (std::size_t i = 0; i < count; ++i) dst[i] = float_to_half(src[i]);
  }

  void unstage_output(float* dst, int n) {
    const std::size_t count = sketch_.per_image * n;
    if (!sketch_.half) {
      std::memcpy(dst, sketch_.pinned.get(), count * sizeof(float));
      return;
    }
    const auto* src = static_cast<const std::uint16_t*>(sketch_.pinned.get());
    for (std::size_t i = 0; i < count; ++i) dst[i] = half_to_float(src[i]);
  }

  std::string path_;
  bool use_graph_ = false;
  int device_ = 0;
  Logger logger_;
  // Declared in creation order: destroyed graphs and contexts (buckets_), then engine, then runtime.
  std::unique_ptr<nvinfer1::IRuntime, Deleter<nvinfer1::IRuntime>> runtime_;
  std::unique_ptr<nvinfer1::ICudaEngine, Deleter<nvinfer1::ICudaEngine>> engine_;
  Binding photo_, depth_, style_, sketch_;
  std::unique_ptr<CUstream_st, StreamDestroy> stream_;
  std::vector<Bucket> buckets_;
  int height_ = 0, width_ = 0, min_batch_ = 1, max_batch_ = 1;
};

}  // namespace

Sketcher open_tensorrt(const std::string& engine_path, const TensorRTOptions& options) {
  return Sketcher(std::make_unique<TensorRTBackend>(engine_path, options));
}

}  // namespace hida
