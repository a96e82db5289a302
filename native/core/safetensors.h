// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length,
// a JSON header naming each tensor's dtype, shape and byte range, then the raw bytes.
// Reading validates everything the header declares against the file before allocating.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor_data.h"

namespace fcn::safetensors {

struct Entry {
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range within the data section
};

struct Header {
  std::vector<Entry> entries;  // in file order of their bytes
  std::map<std::string, std::string> metadata;
};

/// Parses and validates a header for a data section of dataSize bytes: known dtypes,
/// sizes that match the byte ranges, ranges inside the data, no overlaps and no holes.
Header parseHeader(std::string_view json, uint64_t dataSize);

/// Reads every tensor of a .safetensors file, in the order of their bytes, and its
/// `__metadata__` strings; the header is parsed and validated once, before any allocation.
WeightsFile read(const std::string& path);

/// Writes tensors (copied to contiguous CPU) atomically: a temporary file, then a rename.
void write(const std::string& path, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata);

/// True when the first bytes of a file look like safetensors (a sane length and '{').
bool looksLike(const uint8_t* head, size_t size, uint64_t fileSize);

}  // namespace fcn::safetensors
