// The batch sizes a TensorRT engine runs at: powers of two from the engine's
// smallest batch up, then its largest (1, 2, 4, 8 for 1..8; 1, 2, 4, 8, 12 for
// 1..12). Each has its own execution context whose input shape is set once;
// a batch runs in the smallest bucket that holds it, padded with zero rows.
// The same plan as the Python backend's batch_buckets (export/tensorrt_backend.py);
// tests/cpp/test_trt_host.py compares the two.
#pragma once

#include <cstddef>
#include <vector>

namespace hida {

inline std::vector<int> batch_buckets(int min_batch, int max_batch) {
  std::vector<int> sizes;
  for (int b = 1; b < max_batch; b *= 2) {
    if (b >= min_batch) sizes.push_back(b);
  }
  sizes.push_back(max_batch);
  return sizes;
}

// Index in `buckets` of the smallest bucket holding n images (n <= the last bucket).
inline std::size_t bucket_index(const std::vector<int>& buckets, int n) {
  std::size_t i = 0;
  while (i + 1 < buckets.size() && buckets[i] < n) ++i;
  return i;
}

}  // namespace hida
