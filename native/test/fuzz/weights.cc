// libFuzzer harness: a weights file as load() reads it: safetensors, or torch.save's zip
// (directory, data.pkl, storages) and its legacy format.
#include "core/weights.h"

#include "test/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    fcn::weights::read(fcn::fuzz::asFile(data, size));
  } catch (const std::exception&) {
    // a refused file is the expected outcome of most inputs
  }
  return 0;
}
