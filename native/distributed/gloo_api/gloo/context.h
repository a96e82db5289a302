// Declarations for ProcessGroupGloo.hpp; see README.md beside this file.
#pragma once
#include <chrono>

namespace gloo {
// A set of connections to the peers; created and used by libtorch only.
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo
