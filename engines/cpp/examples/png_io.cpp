// The one translation unit that compiles stb's implementation.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "png_io.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <cstdio>
#include <memory>

#include "hida/sketcher.h"

namespace hida_example {

hida::Image read_image(const std::string& path) {
  int w = 0, h = 0, c = 0;
  // 16-bit files are read as 8 bits; req_comp 0 keeps the file's channels so the
  // grey conversion below is Pillow's (stb's own luma weights differ).
  std::unique_ptr<stbi_uc, void (*)(void*)> data(stbi_load(path.c_str(), &w, &h, &c, 0), stbi_image_free);
  if (!data) throw hida::Error(path + ": cannot read as an image (" + stbi_failure_reason() + ")");
  const int keep = c >= 3 ? 3 : 1;  // grey+alpha -> grey, RGBA -> RGB
  hida::Image im{w, h, keep, std::vector<std::uint8_t>(std::size_t(w) * h * keep)};
  for (std::size_t i = 0; i < std::size_t(w) * h; ++i) {
    for (int k = 0; k < keep; ++k) im.pixels[i * keep + k] = data.get()[i * c + k];
  }
  return im;
}

void write_png(const hida::Image& image, const std::string& path) {
  const std::string tmp = path + ".tmp.png";
  if (!stbi_write_png(tmp.c_str(), image.width, image.height, image.channels, image.pixels.data(),
                      image.width * image.channels)) {
    std::remove(tmp.c_str());
    throw hida::Error(path + ": cannot write the PNG (is the folder there and writable?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw hida::Error(path + ": cannot move the written PNG into place");
  }
}

}  // namespace hida_example
