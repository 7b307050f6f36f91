// Driver for the host-side parts of hida::tensorrt that need neither TensorRT
// nor a GPU: the manifest checks and the FP16 conversions. test_trt_host.py
// builds it (with the hida_trt_host_checks target of engines/cpp) and asserts
// on what it prints or writes.
//
//   trt_host_checks manifest MANIFEST.json TRT_VERSION CC_MAJOR CC_MINOR
//       prints "ok <gpu name>|<weights sha256>" or the hida::Error message; exit 0 / 2
//   trt_host_checks half IN.f32 OUT.u16 BACK.f32
//       writes float_to_half of every float, and half_to_float of every one of the 65536 half bit patterns
//   trt_host_checks buckets MIN MAX
//       prints the batch buckets, then for n = MIN..MAX the bucket that runs a batch of n
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "batch_buckets.h"
#include "half.h"
#include "hida/sketcher.h"
#include "tensorrt_manifest.h"

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "manifest" && argc == 6) {
      const hida::EngineManifest m = hida::read_manifest(argv[2]);
      hida::check_manifest(m, "engine.plan", std::stol(argv[3]), std::stoi(argv[4]), std::stoi(argv[5]), "this GPU");
      std::cout << "ok " << m.gpu_name << "|" << m.weights_sha256 << "\n";
      return 0;
    }
    if (mode == "half" && argc == 5) {
      std::ifstream in(argv[2], std::ios::binary);
      std::vector<float> values;
      for (float v; in.read(reinterpret_cast<char*>(&v), sizeof v);) values.push_back(v);
      std::vector<std::uint16_t> halves;
      for (float v : values) halves.push_back(hida::float_to_half(v));
      std::ofstream(argv[3], std::ios::binary)
          .write(reinterpret_cast<const char*>(halves.data()), std::streamsize(halves.size() * 2));
      std::vector<float> back;
      for (std::uint32_t h = 0; h < 65536; ++h) back.push_back(hida::half_to_float(static_cast<std::uint16_t>(h)));
      std::ofstream(argv[4], std::ios::binary)
          .write(reinterpret_cast<const char*>(back.data()), std::streamsize(back.size() * 4));
      return 0;
    }
    if (mode == "buckets" && argc == 4) {
      const std::vector<int> buckets = hida::batch_buckets(std::stoi(argv[2]), std::stoi(argv[3]));
      for (int b : buckets) std::cout << b << " ";
      std::cout << "\n";
      for (int n = std::stoi(argv[2]); n <= std::stoi(argv[3]); ++n) std::cout << buckets[hida::bucket_index(buckets, n)] << " ";
      std::cout << "\n";
      return 0;
    }
    std::cerr << "usage: trt_host_checks manifest JSON TRT_VERSION CC_MAJOR CC_MINOR | half IN.f32 OUT.u16 BACK.f32 | buckets MIN MAX\n";
    return 1;
  } catch (const std::exception& e) {
    std::cout << e.what() << "\n";
    return 2;
  }
}
