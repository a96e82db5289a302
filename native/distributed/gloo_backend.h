// The Gloo backend of c10d (CPU tensors), made in one file: the only one that names
// ProcessGroupGloo and includes the Gloo declarations in native/distributed/gloo_api.
#pragma once

#include <chrono>
#include <string>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

namespace fcn {

/// Connects rank to the others of a group of size through store: Gloo's TCP transport,
/// bound to the network interface `interface` when given (as GLOO_SOCKET_IFNAME), else to
/// the address of `hostname` (this machine as the peers reach it); collectives fail after
/// timeout.
c10::intrusive_ptr<c10d::Backend> makeGlooBackend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                  std::chrono::milliseconds timeout, const std::string& hostname,
                                                  const std::string& interface);

}  // namespace fcn
