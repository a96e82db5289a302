// Declarations for ProcessGroupGloo.hpp; see ../README.md.
#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace gloo::rendezvous {
// The key-value store interface that ProcessGroupGloo::GlooStore implements over a c10d::Store.
class Store {
 public:
  virtual ~Store() = default;
  virtual void set(const std::string& key, const std::vector<char>& data) = 0;
  virtual std::vector<char> get(const std::string& key) = 0;
  virtual void wait(const std::vector<std::string>& keys) = 0;
  virtual void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) = 0;
};
}  // namespace gloo::rendezvous
