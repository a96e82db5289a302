// libFuzzer harness: the safetensors reader (header, offsets, dtypes, shapes).
#include "core/safetensors.h"

#include "test/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    fcn::safetensors::read(fcn::fuzz::asFile(data, size));
  } catch (const std::exception&) {
    // a refused file is the expected outcome of most inputs
  }
  return 0;
}
