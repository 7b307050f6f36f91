// 8-bit images and the preprocessing of hida_rt/images.py, reproduced exactly.
//
// Resizing is Pillow's Image.resize(..., BILINEAR) for 8-bit images (Pillow's
// Resample.c: a triangle filter widened by the scale when shrinking, 22-bit
// fixed-point coefficients, horizontal pass then vertical, each rounded to
// 8 bits), so a C++ photo of any size gives the same network input as Python,
// bit for bit; so does the depth map's Gaussian blur.
#pragma once

#include <cstdint>
#include <vector>

namespace hida {

// Interleaved rows of `channels` bytes per pixel (1 = grey, 3 = RGB).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<std::uint8_t> pixels;  // height * width * channels
};

// Pillow's bilinear resize of an 8-bit image to width x height (a copy if the size is unchanged).
Image resize_bilinear(const Image& image, int width, int height);

// Grey -> RGB replicates the channel, as Pillow's convert("RGB"); RGB stays.
Image to_rgb(const Image& image);
// RGB -> grey with Pillow's convert("L") weights (ITU-R 601-2 luma, 16-bit fixed point); grey stays.
Image to_grey(const Image& image);

// hida_rt.images.photo_to_tensor: RGB, resized to height x width, into 3 x H x W floats in [-1, 1].
void photo_to_chw(const Image& photo, int height, int width, float* out);
// hida_rt.images.DEPTH_BLUR_KSIZE / DEPTH_BLUR_SIGMA: the authors' test script blurs the depth map.
constexpr int kDepthBlurKsize = 5;
constexpr double kDepthBlurSigma = 0.2;

// hida_rt.images.depth_to_tensor: grey, resized, into 1 x H x W floats in [0, 1], then blurred
// (gaussian_blur, at the network size).
void depth_to_chw(const Image& depth, int height, int width, float* out);
// hida_rt.images.gaussian_blur: an H x W float image blurred by a ksize x ksize Gaussian, rows then
// columns, edges mirrored without repeating the edge pixel (numpy "reflect", OpenCV BORDER_REFLECT_101),
// with the same float32 roundings in the same order. `scratch` holds H x W floats; `out` may not be `in`.
void gaussian_blur(const float* in, float* scratch, float* out, int height, int width,
                   int ksize = kDepthBlurKsize, double sigma = kDepthBlurSigma);
// hida_rt.images.sketch_to_uint8: H x W floats in [-1, 1] -> grey image, round half to even as torch.round.
Image sketch_to_grey(const float* sketch, int height, int width);

}  // namespace hida
