// libtorch builds Gloo into libtorch_cpu.so without shipping Gloo's headers; the declarations
// in native/distributed/gloo_api cover what ProcessGroupGloo.hpp names. Every Gloo object is made and
// destroyed inside libtorch (createDeviceForHostname, the ProcessGroupGloo constructor): this
// file only passes pointers along, and never builds a Gloo object itself.
#ifndef USE_C10D_GLOO  // libtorch's CMake config may define it already
#define USE_C10D_GLOO
#endif
#include "distributed/gloo_backend.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

namespace fcn {

c10::intrusive_ptr<c10d::Backend> makeGlooBackend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                  std::chrono::milliseconds timeout, const std::string& hostname,
                                                  const std::string& interface) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(interface.empty() ? c10d::ProcessGroupGloo::createDeviceForHostname(hostname)
                                               : c10d::ProcessGroupGloo::createDeviceForInterface(interface));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}

}  // namespace fcn
