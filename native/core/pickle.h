// A restricted unpickler for PyTorch weight files. Like PyTorch's `weights_only` loader it
// knows only the opcodes and globals a state dict uses (OrderedDict, tensor rebuilders,
// storage types); any other global is refused by name, so a file can never run code.
// Every read is bounded by the input, and sizes are checked before anything is allocated.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor_data.h"

namespace fcn::pickle {

struct Value;
using Ref = std::shared_ptr<Value>;

struct Value {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Global, Storage, Tensor };
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;        // String, Bytes, Global ("module.name")
  std::vector<Ref> items;  // Tuple, List; Dict as key, value, key, value, ...
  at::Tensor tensor;       // Storage (1-d, its dtype) or Tensor
};

/// A new value of `kind`.
inline Ref makeValue(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

/// Returns the storage tensor for a persistent id (the tuple torch.save writes).
using PersistentLoad = std::function<Ref(const Ref& pid)>;

/// Reads pickles (the opcode machine: pickle.cc; the globals it allows and what they build:
/// pickle_globals.cc). The values it returns stay whole while it lives: when it is destroyed it
/// empties every container it made, so that a container holding itself (a memo cycle) leaks
/// nothing and a million nested lists are freed without recursion.
class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, PersistentLoad persistentLoad);
  ~Unpickler();
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;
  /// Reads one pickle starting at position(); throws std::invalid_argument on bad input.
  Ref load();
  /// Bytes consumed so far (legacy files hold several pickles back to back).
  size_t position() const { return pos_; }

 private:
  [[noreturn]] void fail(const std::string& what) const;
  const uint8_t* take(size_t n);
  uint64_t readUint(size_t n);
  Ref pop();
  std::vector<Ref> popMark();
  /// A new tuple, list or dict, remembered for the teardown.
  Ref container(Value::Kind kind);
  Ref global(const std::string& module, const std::string& name);
  Ref reduce(const Ref& callable, const Ref& args);
  void build(const Ref& target, const Ref& state);
  void setItems(const Ref& dict, std::vector<Ref>& kv);

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  PersistentLoad persistentLoad_;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::vector<Ref> containers_;
};

/// The dtype of a storage global such as torch.FloatStorage, or Undefined if not one.
at::ScalarType storageDtype(const std::string& global);

/// Dict lookup by string key (nullptr when absent).
Ref dictGet(const Ref& dict, const std::string& key);

/// The tensors of an unpickled dict, nested dicts flattened with '.' (a state dict, or a
/// checkpoint holding several). Bounded: dicts nested deeper than 64 levels, a dict that
/// contains itself, or more than 1,000,000 values visited (shared dicts are walked again for
/// each place they appear) are refused with an error saying which.
void collectTensors(const Ref& dict, NamedTensors& out);

}  // namespace fcn::pickle
