// libFuzzer harness: the JSON parser (safetensors headers, checkpoint metadata).
#include "core/json.h"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    fcn::json::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const std::exception&) {
    // a refused document is the expected outcome of most inputs
  }
  return 0;
}
