#include "core/weights.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "core/describe.h"
#include "core/safetensors.h"
#include "core/torch_save.h"

namespace fcn::weights {

WeightsFile read(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw std::runtime_error("no weights file at '" + path + "'");
  uint64_t size = std::filesystem::file_size(path);
  uint8_t head[9] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(head), sizeof head);
  try {
    if (safetensors::looksLike(head, static_cast<size_t>(in.gcount()), size)) return safetensors::read(path);
    return {torch_save::read(path), {}};
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot load '" + path + "': " + messageOf(e));
  }
}

}  // namespace fcn::weights
