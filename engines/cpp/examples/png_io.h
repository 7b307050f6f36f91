// Image files for the example, through stb_image / stb_image_write.
#pragma once

#include <string>

#include "hida/image.h"

namespace hida_example {

// Reads an 8-bit PNG/JPEG/BMP as grey (1 channel) or RGB (3 channels); alpha is
// dropped, as Pillow's convert("RGB") / convert("L") do. Throws hida::Error.
hida::Image read_image(const std::string& path);
// Writes a grey or RGB image as PNG, atomically (temporary name, then rename).
void write_png(const hida::Image& image, const std::string& path);

}  // namespace hida_example
