// hida_sketch: sketch aligned face photos with their depth maps from C++.
//
//   hida_sketch --model hida_256.pt2 [--style 2 | --style 0.5,0,0.5] [--repeat N]
//               [--raw sketch.f32] [--dump-input input.f32] [--cuda-graph]
//               PHOTO DEPTH OUT.png [PHOTO DEPTH OUT.png ...]
//
// All photos run as one batch. Photos and depth maps of any size are resized to
// the network size exactly as Python's hida_rt.images does (Pillow bilinear),
// and each sketch is resized back to its photo's size, as python -m hida_rt.sketch.
// --raw writes the network output (N x 1 x H x W float32, little-endian, no
// header) and --dump-input the network input (all photos N x 3 x H x W, then
// all depth maps N x 1 x H x W, float32), to compare with Python.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "hida/sketcher.h"
#include "png_io.h"
#if defined(HIDA_HAVE_AOTI)
#include "hida/aoti.h"
#endif
#if defined(HIDA_HAVE_TENSORRT)
#include "hida/tensorrt.h"
#endif

namespace {

const char* kUsage =
    "usage: hida_sketch --model MODEL.pt2|MODEL.plan [--style 1|2|3|w1,w2,w3] [--repeat N] [--raw FILE] "
    "[--dump-input FILE] [--cuda-graph] PHOTO DEPTH OUT.png [PHOTO DEPTH OUT.png ...]";

struct Args {
  std::string model, raw, dump_input, style = "2";
  int repeat = 1;
  bool cuda_graph = false;
  std::vector<std::string> triples;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw hida::Error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--model") a.model = value();
    else if (arg == "--style") a.style = value();
    else if (arg == "--raw") a.raw = value();
    else if (arg == "--dump-input") a.dump_input = value();
    else if (arg == "--cuda-graph") a.cuda_graph = true;
    else if (arg == "--repeat") {
      const std::string v = value();
      try {
        a.repeat = std::stoi(v);
      } catch (const std::exception&) {
        a.repeat = 0;
      }
      if (a.repeat < 1) throw hida::Error("--repeat must be a positive integer, got " + v);
    } else if (arg == "-h" || arg == "--help") {
      std::cout << kUsage << "\n";
      std::exit(0);
    } else if (arg.size() > 1 && arg[0] == '-') throw hida::Error("unknown option " + arg + "\n" + kUsage);
    else a.triples.push_back(arg);
  }
  if (a.model.empty()) throw hida::Error(std::string("--model is required\n") + kUsage);
  if (a.triples.empty() || a.triples.size() % 3 != 0) {
    throw hida::Error(std::string("give PHOTO DEPTH OUT.png triples\n") + kUsage);
  }
  return a;
}

hida::StyleVector parse_style(const std::string& text) {
  std::vector<float> w;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    try {
      std::size_t used = 0;
      w.push_back(std::stof(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw hida::Error("--style takes 1, 2 or 3, or three weights like 0.2,0.3,0.5; got '" + text + "'");
    }
  }
  if (w.size() == 1 && (w[0] == 1.0f || w[0] == 2.0f || w[0] == 3.0f)) return hida::style_one_hot(int(w[0]));
  if (w.size() == 3) return hida::style_mix(w[0], w[1], w[2]);
  throw hida::Error("--style takes 1, 2 or 3, or three weights like 0.2,0.3,0.5; got '" + text + "'");
}

hida::Sketcher open_model(const Args& a) {
  if (ends_with(a.model, ".pt2")) {
#if defined(HIDA_HAVE_AOTI)
    return hida::open_aoti(a.model);
#else
    throw hida::Error(a.model + ": this hida_sketch was built without LibTorch (hida::aoti)");
#endif
  }
  if (ends_with(a.model, ".plan") || ends_with(a.model, ".engine")) {
#if defined(HIDA_HAVE_TENSORRT)
    hida::TensorRTOptions options;
    options.cuda_graph = a.cuda_graph;
    return hida::open_tensorrt(a.model, options);
#else
    throw hida::Error(a.model + ": this hida_sketch was built without TensorRT (hida::tensorrt)");
#endif
  }
  throw hida::Error(a.model + ": unknown model type; expected a .pt2 (AOTInductor) or .plan (TensorRT) file");
}

void write_floats(const std::string& path, const std::vector<float>& data) {
  static_assert(sizeof(float) == 4, "float32 expected");
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size() * sizeof(float)));
  if (!f) throw hida::Error(path + ": cannot write");
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  const hida::StyleVector style = parse_style(a.style);
  std::vector<hida::Image> photos, depths;
  for (std::size_t i = 0; i < a.triples.size(); i += 3) {
    photos.push_back(hida_example::read_image(a.triples[i]));
    depths.push_back(hida_example::read_image(a.triples[i + 1]));
    const double pa = double(photos.back().width) / photos.back().height;
    const double da = double(depths.back().width) / depths.back().height;
    if (std::abs(pa - da) > 0.02 * pa) {  // as hida_rt.sketch: a different framing means a wrong pairing
      throw hida::Error(a.triples[i + 1] + ": depth map's aspect ratio differs from photo " + a.triples[i] +
                        "; they must show the same aligned face");
    }
  }
  auto t0 = std::chrono::steady_clock::now();
  hida::Sketcher sketcher = open_model(a);
  const double load_s = seconds_since(t0);
  const int n = static_cast<int>(photos.size());
  const int h = sketcher.height(), w = sketcher.width();

  if (!a.dump_input.empty()) {
    const std::size_t plane = std::size_t(h) * w;
    std::vector<float> input(4 * plane * n);
    for (int i = 0; i < n; ++i) {
      hida::photo_to_chw(photos[i], h, w, &input[3 * plane * i]);
      hida::depth_to_chw(depths[i], h, w, &input[3 * plane * n + plane * i]);
    }
    write_floats(a.dump_input, input);
  }

  std::vector<float> raw;
  std::vector<hida::Image> sketches;
  std::vector<double> times;
  for (int r = 0; r < a.repeat; ++r) {
    t0 = std::chrono::steady_clock::now();
    sketches = sketcher.sketch_images(photos, depths, style, &raw);
    times.push_back(seconds_since(t0));
  }
  for (int i = 0; i < n; ++i) hida_example::write_png(sketches[i], a.triples[3 * i + 2]);
  if (!a.raw.empty()) write_floats(a.raw, raw);

  std::printf("hida_sketch: %s, %d image(s) at %dx%d in one batch: load %.2f s, first call %.1f ms",
              sketcher.backend_name().c_str(), n, h, w, load_s, times[0] * 1e3);
  if (a.repeat > 1) {
    std::vector<double> rest(times.begin() + 1, times.end());
    std::sort(rest.begin(), rest.end());
    std::printf(", median of %d more %.1f ms (%.1f ms/image)", a.repeat - 1, rest[rest.size() / 2] * 1e3,
                rest[rest.size() / 2] * 1e3 / n);
  }
  std::printf("\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    // One line for the error itself; usage text, if any, follows on its own lines.
    std::fprintf(stderr, "hida_sketch: error: %s\n", e.what());
    return 2;
  }
}
