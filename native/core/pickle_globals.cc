// What the globals that a state dict's pickle may name build (OrderedDict, the tensor
// rebuilders, storage types, `_codecs.encode`), and the walk from an unpickled dict to its
// tensors. The opcode machine that reads the pickle is in pickle.cc.
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/pickle.h"
#include "core/tensor_data.h"

namespace fcn::pickle {

namespace {

struct StorageType {
  const char* name;
  at::ScalarType type;
};
constexpr StorageType kStorages[] = {
    {"torch.FloatStorage", at::kFloat},       {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
    {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
    {"torch.ShortStorage", at::kShort},       {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
    {"torch.BoolStorage", at::kBool},
};

constexpr const char* kCallables[] = {
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_parameter",
    "_codecs.encode",
};

}  // namespace

at::ScalarType storageDtype(const std::string& global) {
  for (const auto& s : kStorages) {
    if (global == s.name) return s.type;
  }
  return at::ScalarType::Undefined;
}

Ref dictGet(const Ref& dict, const std::string& key) {
  if (!dict || dict->kind != Value::Kind::Dict) return nullptr;
  for (size_t i = 0; i + 1 < dict->items.size(); i += 2) {
    const Ref& k = dict->items[i];
    if (k->kind == Value::Kind::String && k->text == key) return dict->items[i + 1];
  }
  return nullptr;
}

Ref Unpickler::global(const std::string& module, const std::string& name) {
  std::string full = module + "." + name;
  bool allowed = storageDtype(full) != at::ScalarType::Undefined;
  for (const char* c : kCallables) allowed = allowed || full == c;
  if (!allowed) {
    fail("refusing global '" + full +
         "': only the types of a state dict are allowed (OrderedDict, tensor rebuilders, storages); "
         "this file may try to run code");
  }
  Ref g = makeValue(Value::Kind::Global);
  g->text = full;
  return g;
}

namespace {
std::vector<int64_t> intTuple(const Ref& v, const char* what) {
  if (!v || (v->kind != Value::Kind::Tuple && v->kind != Value::Kind::List)) {
    throw std::invalid_argument(std::string("pickle: tensor ") + what + " is not a tuple");
  }
  std::vector<int64_t> out;
  for (const auto& item : v->items) {
    if (item->kind != Value::Kind::Int || item->integer < 0) {
      throw std::invalid_argument(std::string("pickle: tensor ") + what + " holds a value that is not a size >= 0");
    }
    out.push_back(item->integer);
  }
  return out;
}

Ref rebuildTensor(const std::vector<Ref>& args) {
  if (args.size() < 4 || args[0]->kind != Value::Kind::Storage || args[1]->kind != Value::Kind::Int) {
    throw std::invalid_argument("pickle: malformed tensor record");
  }
  const at::Tensor& storage = args[0]->tensor;
  int64_t offset = args[1]->integer;
  std::vector<int64_t> size = intTuple(args[2], "size");
  std::vector<int64_t> stride = intTuple(args[3], "stride");
  if (size.size() != stride.size()) throw std::invalid_argument("pickle: tensor size and stride differ in length");
  int64_t numel = checkedNumel(size);
  // The last element addressed must lie inside the storage (overflow-checked).
  uint64_t last = static_cast<uint64_t>(offset);
  for (size_t i = 0; i < size.size() && numel > 0; ++i) {
    uint64_t span = static_cast<uint64_t>(size[i] - 1);
    if (stride[i] != 0 && span > (std::numeric_limits<uint64_t>::max() - last) / static_cast<uint64_t>(stride[i])) {
      throw std::invalid_argument("pickle: tensor strides overflow");
    }
    last += span * static_cast<uint64_t>(stride[i]);
  }
  uint64_t available = static_cast<uint64_t>(storage.numel());
  if (offset < 0 || (numel > 0 ? last >= available : static_cast<uint64_t>(offset) > available)) {
    throw std::invalid_argument("pickle: tensor of size [" + c10::Join(", ", size) + "] reaches past the end of its " +
                                std::to_string(available) + "-element storage");
  }
  Ref t = makeValue(Value::Kind::Tensor);
  t->tensor = storage.as_strided(size, stride, offset);
  return t;
}
}  // namespace

Ref Unpickler::reduce(const Ref& callable, const Ref& args) {
  if (callable->kind != Value::Kind::Global) fail("REDUCE on something that is not an allowed global");
  if (args->kind != Value::Kind::Tuple) fail("REDUCE arguments are not a tuple");
  const std::string& name = callable->text;
  if (name == "collections.OrderedDict") {
    Ref dict = container(Value::Kind::Dict);
    if (!args->items.empty()) fail("OrderedDict with constructor arguments is not supported");
    return dict;
  }
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
    return rebuildTensor(args->items);
  }
  if (name == "torch._utils._rebuild_parameter") {
    if (args->items.empty() || args->items[0]->kind != Value::Kind::Tensor) fail("malformed parameter record");
    return args->items[0];
  }
  if (name == "_codecs.encode") {
    if (args->items.empty() || args->items[0]->kind != Value::Kind::String) fail("malformed bytes record");
    Ref bytes = makeValue(Value::Kind::Bytes);
    // latin1 of the UTF-8 text: code points below 256 become single bytes.
    const std::string& s = args->items[0]->text;
    for (size_t i = 0; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {
        bytes->text += static_cast<char>(c);
      } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) {
        bytes->text += static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F));
      } else {
        fail("bytes record is not latin1");
      }
    }
    return bytes;
  }
  fail("global '" + name + "' cannot be called");
}

void Unpickler::build(const Ref& target, const Ref& state) {
  // OrderedDict state is its __dict__ (torch's `_metadata` with module versions): accepted
  // and dropped. Nothing else may be built.
  if (target->kind == Value::Kind::Dict && (state->kind == Value::Kind::Dict || state->kind == Value::Kind::None)) {
    return;
  }
  fail("BUILD is only allowed on an OrderedDict");
}

namespace {

constexpr int kMaxDictDepth = 64;
constexpr int64_t kMaxVisits = 1'000'000;

struct Walk {
  NamedTensors& out;
  std::vector<const Value*> path;  // the dicts being walked, outermost first
  int64_t visits = 0;

  void dict(const Value& d, const std::string& prefix) {
    if (std::find(path.begin(), path.end(), &d) != path.end()) {
      throw std::invalid_argument("pickle: the dict at '" + prefix + "' contains itself");
    }
    if (static_cast<int>(path.size()) >= kMaxDictDepth) {
      throw std::invalid_argument("pickle: dicts nested deeper than " + std::to_string(kMaxDictDepth) +
                                  " levels (at '" + prefix + "'); a state dict is flat");
    }
    path.push_back(&d);
    for (size_t i = 0; i + 1 < d.items.size(); i += 2) {
      if (++visits > kMaxVisits) {
        throw std::invalid_argument("pickle: more than " + std::to_string(kMaxVisits) +
                                    " values to walk (dicts shared many times over?); refused");
      }
      const Ref& key = d.items[i];
      const Ref& item = d.items[i + 1];
      if (key->kind != Value::Kind::String) continue;
      if (item->kind == Value::Kind::Tensor) {
        out.emplace_back(prefix + key->text, item->tensor);
      } else if (item->kind == Value::Kind::Dict) {
        dict(*item, prefix + key->text + ".");
      }
    }
    path.pop_back();
  }
};

}  // namespace

void collectTensors(const Ref& dict, NamedTensors& out) {
  Walk walk{out, {}, 0};
  walk.dict(*dict, "");
}

}  // namespace fcn::pickle
