// libFuzzer harness: the pickle machine (torch.save's data.pkl, legacy files) and the walk
// to a state dict's tensors. Persistent ids load as one 64-element float storage.
#include "core/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fcn::pickle::Value;
  try {
    fcn::pickle::Unpickler unpickler(data, size, [](const fcn::pickle::Ref&) {
      auto storage = fcn::pickle::makeValue(Value::Kind::Storage);
      storage->tensor = at::zeros({64}, at::kFloat);
      return storage;
    });
    fcn::NamedTensors tensors;
    fcn::pickle::collectTensors(unpickler.load(), tensors);
  } catch (const std::exception&) {
    // a refused pickle is the expected outcome of most inputs
  }
  return 0;
}
