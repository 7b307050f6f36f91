// Sketcher: argument checks, batch splitting and the 8-bit image path, shared
// by every backend so each backend only runs a batch it can take.
#include "hida/sketcher.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace hida {

StyleVector style_mix(float style1, float style2, float style3) {
  // Double arithmetic, rounded to float at the end, as Python's floats stored in a float32 tensor.
  const double w[3] = {style1, style2, style3};
  double total = 0.0;
  for (double x : w) {
    if (!(x >= 0.0) || !std::isfinite(x)) throw Error("style weights must be finite and non-negative");
    total += x;
  }
  if (total <= 0.0) throw Error("style weights must not all be zero");
  // FS2K style s -> generator channel: 1 -> 2, 2 -> 0, 3 -> 1 (hida_rt/styles.py STYLE_CHANNEL).
  return StyleVector{float(w[1] / total), float(w[2] / total), float(w[0] / total)};
}

StyleVector style_one_hot(int fs2k_style) {
  if (fs2k_style < 1 || fs2k_style > 3) throw Error("style must be 1, 2 or 3, got " + std::to_string(fs2k_style));
  return style_mix(fs2k_style == 1, fs2k_style == 2, fs2k_style == 3);
}

Sketcher::Sketcher(std::unique_ptr<Backend> backend) : backend_(std::move(backend)) {
  if (!backend_) throw Error("Sketcher needs a backend");
}
Sketcher::~Sketcher() = default;
Sketcher::Sketcher(Sketcher&&) noexcept = default;
Sketcher& Sketcher::operator=(Sketcher&&) noexcept = default;

std::string Sketcher::backend_name() const { return backend_->name(); }
int Sketcher::height() const { return backend_->height(); }
int Sketcher::width() const { return backend_->width(); }

void Sketcher::run_chunks(const float* photo, const float* depth, const float* style, int n, float* sketch,
                          Memory memory, void* stream) {
  if (n < 1) throw Error("batch size must be at least 1, got " + std::to_string(n));
  if (!photo || !depth || !style || !sketch) throw Error("photo, depth, style and sketch buffers must not be null");
  const std::size_t plane = std::size_t(height()) * width();
  const int chunk = std::max(1, backend_->max_batch());
  // Pointer offsets are valid for device memory too: no copy to split a batch.
  for (int i = 0; i < n; i += chunk) {
    const int k = std::min(chunk, n - i);
    backend_->run(photo + 3 * plane * i, depth + plane * i, style + 3 * std::size_t(i), k, sketch + plane * i,
                  memory, stream);
  }
}

void Sketcher::sketch(const float* photo, const float* depth, const float* style, int n, float* sketch) {
  run_chunks(photo, depth, style, n, sketch, Memory::Host, nullptr);
}

void Sketcher::sketch_device(const float* photo, const float* depth, const float* style, int n, float* sketch,
                             void* cuda_stream) {
  run_chunks(photo, depth, style, n, sketch, Memory::Device, cuda_stream);
}

std::vector<Image> Sketcher::sketch_images(const std::vector<Image>& photos, const std::vector<Image>& depths,
                                           const StyleVector& style, std::vector<float>* raw) {
  if (photos.empty()) throw Error("no photos given");
  if (photos.size() != depths.size()) {
    throw Error(std::to_string(photos.size()) + " photo(s) but " + std::to_string(depths.size()) +
                " depth map(s): give one depth map per photo");
  }
  const int n = static_cast<int>(photos.size());
  const int h = height(), w = width();
  const std::size_t plane = std::size_t(h) * w;
  std::vector<float> photo(3 * plane * n), depth(plane * n), styles(3 * std::size_t(n)), out(plane * n);
  for (int i = 0; i < n; ++i) {
    photo_to_chw(photos[i], h, w, &photo[3 * plane * i]);
    depth_to_chw(depths[i], h, w, &depth[plane * i]);
    std::copy(style.begin(), style.end(), &styles[3 * std::size_t(i)]);
  }
  sketch(photo.data(), depth.data(), styles.data(), n, out.data());
  std::vector<Image> result;
  result.reserve(n);
  for (int i = 0; i < n; ++i) {
    // As hida_rt.sketch: quantise at network size, then resize back to the photo's size.
    result.push_back(resize_bilinear(sketch_to_grey(&out[plane * i], h, w), photos[i].width, photos[i].height));
  }
  if (raw) *raw = std::move(out);
  return result;
}

}  // namespace hida
