// What the libFuzzer harnesses share: the readers that take a path get the input as a file.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

namespace fcn::fuzz {

/// The input written to this process's own file in /tmp (the same file every call), and its path.
inline const std::string& asFile(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/fcn-torch-fuzz-" + std::to_string(getpid()) + ".bin";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace fcn::fuzz
