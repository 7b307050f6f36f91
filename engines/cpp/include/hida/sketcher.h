// hida::Sketcher: run the HIDA generator (photo + depth + style -> pencil sketch) from C++.
//
// One class for every artefact: an AOTInductor package (.pt2, LibTorch, CPU or
// CUDA; see hida/aoti.h) or a TensorRT engine (.plan, see hida/tensorrt.h).
// Tensors follow the runtime's contract (docs/architecture.md):
//   photo  N x 3 x H x W float, RGB in [-1, 1]   ((pixel / 255 - 0.5) / 0.5)
//   depth  N x 1 x H x W float in [0, 1]          (grey / 255, bright = near)
//   style  N x 3 float, generator channel order   (see style_one_hot / style_mix)
//   sketch N x 1 x H x W float in [-1, 1]         ((y + 1) / 2 is grey in [0, 1])
// all dense NCHW, row-major. H x W is fixed by the artefact (256 x 256 for the
// published weights). Every failure throws hida::Error with a one-line message.
#pragma once

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "hida/image.h"

namespace hida {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The generator's style vector. Its channel order is the training code's, not
// FS2K's numbering: channel 0 = FS2K style 2, 1 = style 3, 2 = style 1
// (as hida_rt/styles.py).
using StyleVector = std::array<float, 3>;
StyleVector style_one_hot(int fs2k_style);                        // 1, 2 or 3
StyleVector style_mix(float style1, float style2, float style3);  // weights, normalised to sum 1

// Where the float buffers handed to Sketcher live.
enum class Memory { Host, Device };

// What an implementation (AOTInductor, TensorRT) provides. Users do not call it;
// Sketcher validates arguments and splits batches before calling run().
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual int height() const = 0;
  virtual int width() const = 0;
  // Largest n that one run() accepts; Sketcher splits larger batches.
  virtual int max_batch() const = 0;
  // 1 <= n <= max_batch(). `stream` is a cudaStream_t for Memory::Device (null: the default stream).
  virtual void run(const float* photo, const float* depth, const float* style, int n, float* sketch,
                   Memory memory, void* stream) = 0;
};

class Sketcher {
 public:
  explicit Sketcher(std::unique_ptr<Backend> backend);
  ~Sketcher();
  Sketcher(Sketcher&&) noexcept;
  Sketcher& operator=(Sketcher&&) noexcept;

  std::string backend_name() const;
  int height() const;  // the network input size the artefact was built for
  int width() const;

  // Host buffers, layouts as above; any n >= 1 (run in chunks of the artefact's batch).
  void sketch(const float* photo, const float* depth, const float* style, int n, float* sketch);

  // CUDA device buffers, same layouts; the work is queued on `cuda_stream` and
  // this call returns once it has finished. Throws for a CPU-only artefact.
  void sketch_device(const float* photo, const float* depth, const float* style, int n, float* sketch,
                     void* cuda_stream = nullptr);

  // 8-bit images of any size, preprocessed exactly as hida_rt.images does
  // (Pillow bilinear resize to H x W), all run as one batch with one style.
  // Returns each sketch as a grey image resized back to its photo's size;
  // `raw`, if given, receives the N x 1 x H x W float output.
  std::vector<Image> sketch_images(const std::vector<Image>& photos, const std::vector<Image>& depths,
                                   const StyleVector& style, std::vector<float>* raw = nullptr);

 private:
  void run_chunks(const float* photo, const float* depth, const float* style, int n, float* sketch,
                  Memory memory, void* stream);
  std::unique_ptr<Backend> backend_;
};

}  // namespace hida
