// libFuzzer harness: the zip central directory reader (torch.save's container).
#include "core/zip_directory.h"

#include "test/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    fcn::zip::readDirectory(fcn::fuzz::asFile(data, size));
  } catch (const std::exception&) {
    // a refused file is the expected outcome of most inputs
  }
  return 0;
}
