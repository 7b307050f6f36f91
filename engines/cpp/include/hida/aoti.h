// AOTInductor backend: runs a .pt2 made by `python -m hida_rt.export --format pt2` with
// LibTorch (link the CMake target hida::aoti). CPU packages run on host
// buffers; CUDA packages on host or device buffers.
#pragma once

#include <string>

#include "hida/sketcher.h"

namespace hida {

struct AotiOptions {
  // CUDA packages: the GPU to run on (-1: the current device).
  int device_index = -1;
};

// Loads the package (unpacks it to a temporary directory and loads its shared
// library); throws hida::Error if it is missing, not made by hida_rt, or built
// for a device this LibTorch cannot use.
Sketcher open_aoti(const std::string& package_path, const AotiOptions& options = {});

}  // namespace hida
