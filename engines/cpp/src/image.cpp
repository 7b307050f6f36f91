// Pillow-exact preprocessing (see hida/image.h). The resize follows the
// algorithm of Pillow's libImaging/Resample.c (8-bit path), written anew here;
// the C++ example's output matches Python's only if every step rounds the same.
#include "hida/image.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "hida/sketcher.h"

namespace hida {
namespace {

// Pillow keeps 8-bit resampling coefficients in 32-bit ints: 32 - 8 bits of
// pixel - 2 bits of headroom for the sum of a few taps.
constexpr int kPrecisionBits = 32 - 8 - 2;

// Taps of one output pixel along one axis: first input index and fixed-point weights.
struct Taps {
  int first = 0;
  std::vector<int> weights;
};

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

std::vector<Taps> compute_taps(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  // Shrinking widens the filter to cover every input pixel (an area average).
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;  // the bilinear filter's support is 1
  std::vector<Taps> taps(out_size);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double inv = 1.0 / filter_scale;
    int xmin = static_cast<int>(center - support + 0.5);  // truncation, as in Pillow
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    std::vector<double> w(xmax);
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = triangle((x + xmin - center + 0.5) * inv);
      total += w[x];
    }
    Taps& t = taps[xx];
    t.first = xmin;
    t.weights.resize(xmax);
    for (int x = 0; x < xmax; ++x) {
      const double k = total != 0.0 ? w[x] / total : w[x];
      // Round half away from zero, as Pillow's normalize_coeffs_8bpc.
      t.weights[x] = static_cast<int>(k < 0 ? -0.5 + k * (1 << kPrecisionBits) : 0.5 + k * (1 << kPrecisionBits));
    }
  }
  return taps;
}

std::uint8_t clip8(int v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<std::uint8_t>(v >> kPrecisionBits);
}

Image resample_horizontal(const Image& in, int width) {
  Image out{width, in.height, in.channels, std::vector<std::uint8_t>(std::size_t(width) * in.height * in.channels)};
  const std::vector<Taps> taps = compute_taps(in.width, width);
  const int c = in.channels;
  for (int y = 0; y < in.height; ++y) {
    const std::uint8_t* row = &in.pixels[std::size_t(y) * in.width * c];
    std::uint8_t* dst = &out.pixels[std::size_t(y) * width * c];
    for (int xx = 0; xx < width; ++xx) {
      const Taps& t = taps[xx];
      for (int ch = 0; ch < c; ++ch) {
        int ss = 1 << (kPrecisionBits - 1);  // rounds the final shift to nearest
        for (std::size_t x = 0; x < t.weights.size(); ++x) ss += row[(t.first + x) * c + ch] * t.weights[x];
        dst[xx * c + ch] = clip8(ss);
      }
    }
  }
  return out;
}

Image resample_vertical(const Image& in, int height) {
  Image out{in.width, height, in.channels, std::vector<std::uint8_t>(std::size_t(in.width) * height * in.channels)};
  const std::vector<Taps> taps = compute_taps(in.height, height);
  const std::size_t stride = std::size_t(in.width) * in.channels;
  for (int yy = 0; yy < height; ++yy) {
    const Taps& t = taps[yy];
    std::uint8_t* dst = &out.pixels[yy * stride];
    for (std::size_t i = 0; i < stride; ++i) {
      int ss = 1 << (kPrecisionBits - 1);
      for (std::size_t y = 0; y < t.weights.size(); ++y) ss += in.pixels[(t.first + y) * stride + i] * t.weights[y];
      dst[i] = clip8(ss);
    }
  }
  return out;
}

// numpy.pad(..., mode="reflect") index: mirrored about the edge pixels without repeating them
// (OpenCV's BORDER_REFLECT_101), folded again for pads wider than the image.
int reflect101(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// hida_rt.images.gaussian_blur's taps: exp(-x^2 / (2 sigma^2)) in double, divided by their sum
// (added left to right, as NumPy's sum of a few values), then rounded to float.
std::vector<float> gaussian_taps(int ksize, double sigma) {
  const int r = ksize / 2;
  std::vector<double> t(ksize);
  for (int i = 0; i < ksize; ++i) {
    const double x = static_cast<double>(i - r) / sigma;
    t[i] = std::exp(-0.5 * (x * x));
  }
  double total = 0.0;
  for (int i = 0; i < ksize; ++i) total += t[i];
  std::vector<float> taps(ksize);
  for (int i = 0; i < ksize; ++i) taps[i] = static_cast<float>(t[i] / total);
  return taps;
}

// One separable pass along rows or along columns, as Python's sum(t * shifted for ...):
// each product rounded to float, then added in tap order starting from 0 (no FMA: see CMakeLists).
void blur_pass(const float* in, float* out, int height, int width, const std::vector<float>& taps, bool along_rows) {
  const int r = static_cast<int>(taps.size()) / 2;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      float acc = 0.0f;
      for (int i = 0; i < static_cast<int>(taps.size()); ++i) {
        const std::size_t src = along_rows ? std::size_t(y) * width + reflect101(x + i - r, width)
                                           : std::size_t(reflect101(y + i - r, height)) * width + x;
        const float product = taps[i] * in[src];
        acc += product;
      }
      out[std::size_t(y) * width + x] = acc;
    }
  }
}

void check_image(const Image& image, const char* what) {
  if (image.width <= 0 || image.height <= 0 || image.channels < 1 ||
      image.pixels.size() != std::size_t(image.width) * image.height * image.channels) {
    throw Error(std::string(what) + ": empty image or pixel buffer of the wrong size");
  }
}

}  // namespace

Image resize_bilinear(const Image& image, int width, int height) {
  check_image(image, "resize");
  if (width <= 0 || height <= 0) throw Error("resize: target size must be positive");
  Image out = image;
  // Horizontal first, as Pillow; a pass whose size does not change is skipped.
  if (width != out.width) out = resample_horizontal(out, width);
  if (height != out.height) out = resample_vertical(out, height);
  return out;
}

Image to_rgb(const Image& image) {
  check_image(image, "to_rgb");
  if (image.channels == 3) return image;
  if (image.channels != 1) throw Error("to_rgb: expected a grey or RGB image, got " + std::to_string(image.channels) + " channels");
  Image out{image.width, image.height, 3, std::vector<std::uint8_t>(image.pixels.size() * 3)};
  for (std::size_t i = 0; i < image.pixels.size(); ++i) {
    out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = image.pixels[i];
  }
  return out;
}

Image to_grey(const Image& image) {
  check_image(image, "to_grey");
  if (image.channels == 1) return image;
  if (image.channels != 3) throw Error("to_grey: expected a grey or RGB image, got " + std::to_string(image.channels) + " channels");
  Image out{image.width, image.height, 1, std::vector<std::uint8_t>(image.pixels.size() / 3)};
  for (std::size_t i = 0; i < out.pixels.size(); ++i) {
    const std::uint8_t* p = &image.pixels[3 * i];
    // Pillow's L24: 0.299 R + 0.587 G + 0.114 B in 16-bit fixed point, rounded.
    out.pixels[i] = static_cast<std::uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
  }
  return out;
}

void photo_to_chw(const Image& photo, int height, int width, float* out) {
  const Image im = resize_bilinear(to_rgb(photo), width, height);
  const std::size_t plane = std::size_t(height) * width;
  for (std::size_t i = 0; i < plane; ++i) {
    for (int c = 0; c < 3; ++c) {
      // The same float32 operations, in the same order, as (x / 255.0 - 0.5) / 0.5 in torch.
      out[c * plane + i] = (static_cast<float>(im.pixels[3 * i + c]) / 255.0f - 0.5f) / 0.5f;
    }
  }
}

void depth_to_chw(const Image& depth, int height, int width, float* out) {
  const Image im = resize_bilinear(to_grey(depth), width, height);
  std::vector<float> grey(im.pixels.size()), rows(im.pixels.size());
  for (std::size_t i = 0; i < im.pixels.size(); ++i) grey[i] = static_cast<float>(im.pixels[i]) / 255.0f;
  gaussian_blur(grey.data(), rows.data(), out, height, width);
}

void gaussian_blur(const float* in, float* scratch, float* out, int height, int width, int ksize, double sigma) {
  if (ksize < 1 || ksize % 2 == 0 || !(sigma > 0.0)) throw Error("gaussian_blur: ksize must be odd and sigma > 0");
  const std::vector<float> taps = gaussian_taps(ksize, sigma);
  // Rows first, then columns, as hida_rt.images.gaussian_blur.
  blur_pass(in, scratch, height, width, taps, true);
  blur_pass(scratch, out, height, width, taps, false);
}

Image sketch_to_grey(const float* sketch, int height, int width) {
  Image out{width, height, 1, std::vector<std::uint8_t>(std::size_t(width) * height)};
  for (std::size_t i = 0; i < out.pixels.size(); ++i) {
    const float g = std::min(std::max((sketch[i] + 1.0f) / 2.0f, 0.0f), 1.0f) * 255.0f;
    out.pixels[i] = static_cast<std::uint8_t>(std::nearbyint(g));  // default mode: half to even
  }
  return out;
}

}  // namespace hida
