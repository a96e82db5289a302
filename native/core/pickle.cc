#include "core/pickle.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include "core/tensor_data.h"

namespace fcn::pickle {

namespace {

enum Op : uint8_t {
  MARK = '(',
  STOP = '.',
  POP = '0',
  POP_MARK = '1',
  DUP = '2',
  BININT = 'J',
  BININT1 = 'K',
  BININT2 = 'M',
  NONE = 'N',
  BINPERSID = 'Q',
  REDUCE = 'R',
  BINSTRING = 'T',
  SHORT_BINSTRING = 'U',
  BINUNICODE = 'X',
  APPEND = 'a',
  BUILD = 'b',
  GLOBAL = 'c',
  DICT = 'd',
  EMPTY_DICT = '}',
  APPENDS = 'e',
  BINGET = 'h',
  LONG_BINGET = 'j',
  LIST = 'l',
  EMPTY_LIST = ']',
  BINPUT = 'q',
  LONG_BINPUT = 'r',
  SETITEM = 's',
  TUPLE = 't',
  EMPTY_TUPLE = ')',
  SETITEMS = 'u',
  BINFLOAT = 'G',
  BINBYTES = 'B',
  SHORT_BINBYTES = 'C',
  PROTO = 0x80,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  EMPTY_SET = 0x8f,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
};

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

Ref make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

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

Unpickler::Unpickler(const uint8_t* data, size_t size, PersistentLoad persistentLoad)
    : data_(data), size_(size), persistentLoad_(std::move(persistentLoad)) {}

Unpickler::~Unpickler() {
  stack_.clear();
  for (const Ref& c : containers_) c->items.clear();
}

Ref Unpickler::container(Value::Kind kind) {
  Ref c = make(kind);
  containers_.push_back(c);
  return c;
}

void Unpickler::fail(const std::string& what) const {
  throw std::invalid_argument("pickle: " + what + " (at byte " + std::to_string(pos_) + ")");
}

const uint8_t* Unpickler::take(size_t n) {
  if (n > size_ - pos_) fail("data ends in the middle of an opcode");
  const uint8_t* p = data_ + pos_;
  pos_ += n;
  return p;
}

uint64_t Unpickler::readUint(size_t n) {
  const uint8_t* p = take(n);
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

Ref Unpickler::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
  Ref v = std::move(stack_.back());
  stack_.pop_back();
  return v;
}

std::vector<Ref> Unpickler::popMark() {
  if (marks_.empty()) fail("no MARK to pop to");
  size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<Ref> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(mark)),
                         std::make_move_iterator(stack_.end()));
  stack_.resize(mark);
  return items;
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
  Ref g = make(Value::Kind::Global);
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
  Ref t = make(Value::Kind::Tensor);
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
    Ref bytes = make(Value::Kind::Bytes);
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

void Unpickler::setItems(const Ref& dict, std::vector<Ref>& kv) {
  if (dict->kind != Value::Kind::Dict) fail("SETITEM on something that is not a dict");
  if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of items");
  for (size_t i = 0; i < kv.size(); i += 2) {
    const Ref& key = kv[i];
    bool replaced = false;
    if (key->kind == Value::Kind::String) {
      for (size_t j = 0; j + 1 < dict->items.size(); j += 2) {
        if (dict->items[j]->kind == Value::Kind::String && dict->items[j]->text == key->text) {
          dict->items[j + 1] = kv[i + 1];
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) {
      dict->items.push_back(key);
      dict->items.push_back(kv[i + 1]);
    }
  }
}

Ref Unpickler::load() {
  stack_.clear();
  marks_.clear();
  std::unordered_map<uint64_t, Ref> memo;
  auto str = [&](size_t n, Value::Kind kind) {
    const uint8_t* p = take(n);
    Ref v = make(kind);
    v->text.assign(reinterpret_cast<const char*>(p), n);
    stack_.push_back(v);
  };
  auto tuple = [&](std::vector<Ref> items) {
    Ref t = container(Value::Kind::Tuple);
    t->items = std::move(items);
    stack_.push_back(t);
  };
  auto top = [&]() -> Ref& {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  };
  for (;;) {
    uint8_t op = *take(1);
    switch (op) {
      case PROTO: {
        uint8_t version = *take(1);
        if (version > 5) fail("unknown pickle protocol " + std::to_string(version));
        break;
      }
      case FRAME: readUint(8); break;
      case STOP: {
        Ref result = pop();
        if (!stack_.empty() || !marks_.empty()) fail("values left on the stack at STOP");
        return result;
      }
      case MARK: marks_.push_back(stack_.size()); break;
      case POP: pop(); break;
      case POP_MARK: popMark(); break;
      case DUP: stack_.push_back(top()); break;
      case NONE: stack_.push_back(make(Value::Kind::None)); break;
      case NEWTRUE:
      case NEWFALSE: {
        Ref b = make(Value::Kind::Bool);
        b->boolean = op == NEWTRUE;
        stack_.push_back(b);
        break;
      }
      case BININT: {
        Ref i = make(Value::Kind::Int);
        i->integer = static_cast<int32_t>(readUint(4));
        stack_.push_back(i);
        break;
      }
      case BININT1:
      case BININT2: {
        Ref i = make(Value::Kind::Int);
        i->integer = static_cast<int64_t>(readUint(op == BININT1 ? 1 : 2));
        stack_.push_back(i);
        break;
      }
      case LONG1:
      case LONG4: {
        uint64_t n = readUint(op == LONG1 ? 1 : 4);
        if (n > size_ - pos_) fail("long integer longer than the data");
        const uint8_t* p = take(static_cast<size_t>(n));
        Ref i = make(Value::Kind::Int);
        i->text.assign(reinterpret_cast<const char*>(p), static_cast<size_t>(n));  // raw two's complement
        if (n <= 8) {
          uint64_t v = 0;
          for (size_t k = n; k-- > 0;) v = (v << 8) | p[k];
          if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);
          i->integer = static_cast<int64_t>(v);
        }
        stack_.push_back(i);
        break;
      }
      case BINFLOAT: {
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];
        Ref f = make(Value::Kind::Float);
        std::memcpy(&f->real, &bits, 8);
        stack_.push_back(f);
        break;
      }
      case SHORT_BINUNICODE: str(readUint(1), Value::Kind::String); break;
      case BINUNICODE: str(readUint(4), Value::Kind::String); break;
      case BINUNICODE8: {
        uint64_t n = readUint(8);
        if (n > size_ - pos_) fail("string longer than the data");
        str(static_cast<size_t>(n), Value::Kind::String);
        break;
      }
      case SHORT_BINSTRING: str(readUint(1), Value::Kind::String); break;
      case BINSTRING: str(readUint(4), Value::Kind::String); break;
      case SHORT_BINBYTES: str(readUint(1), Value::Kind::Bytes); break;
      case BINBYTES: str(readUint(4), Value::Kind::Bytes); break;
      case BINBYTES8: {
        uint64_t n = readUint(8);
        if (n > size_ - pos_) fail("bytes longer than the data");
        str(static_cast<size_t>(n), Value::Kind::Bytes);
        break;
      }
      case EMPTY_TUPLE: tuple({}); break;
      case TUPLE1: tuple({pop()}); break;
      case TUPLE2: {
        Ref b = pop(), a = pop();
        tuple({a, b});
        break;
      }
      case TUPLE3: {
        Ref c = pop(), b = pop(), a = pop();
        tuple({a, b, c});
        break;
      }
      case TUPLE: tuple(popMark()); break;
      case EMPTY_LIST: stack_.push_back(container(Value::Kind::List)); break;
      case LIST: {
        Ref l = container(Value::Kind::List);
        l->items = popMark();
        stack_.push_back(l);
        break;
      }
      case APPEND: {
        Ref v = pop();
        Ref& list = top();
        if (list->kind != Value::Kind::List) fail("APPEND to something that is not a list");
        list->items.push_back(v);
        break;
      }
      case APPENDS: {
        std::vector<Ref> items = popMark();
        Ref& list = top();
        if (list->kind != Value::Kind::List) fail("APPENDS to something that is not a list");
        for (auto& item : items) list->items.push_back(std::move(item));
        break;
      }
      case EMPTY_DICT: stack_.push_back(container(Value::Kind::Dict)); break;
      case DICT: {
        std::vector<Ref> kv = popMark();
        Ref d = container(Value::Kind::Dict);
        setItems(d, kv);
        stack_.push_back(d);
        break;
      }
      case SETITEM: {
        Ref v = pop(), k = pop();
        std::vector<Ref> kv{k, v};
        setItems(top(), kv);
        break;
      }
      case SETITEMS: {
        std::vector<Ref> kv = popMark();
        setItems(top(), kv);
        break;
      }
      case BINPUT: memo[readUint(1)] = top(); break;
      case LONG_BINPUT: memo[readUint(4)] = top(); break;
      case MEMOIZE: {
        uint64_t index = memo.size();
        memo[index] = top();
        break;
      }
      case BINGET:
      case LONG_BINGET: {
        auto it = memo.find(readUint(op == BINGET ? 1 : 4));
        if (it == memo.end()) fail("memo lookup of a missing entry");
        stack_.push_back(it->second);
        break;
      }
      case GLOBAL: {
        auto line = [&]() {
          size_t start = pos_;
          while (pos_ < size_ && data_[pos_] != '\n') ++pos_;
          if (pos_ >= size_) fail("GLOBAL name is not terminated");
          std::string s(reinterpret_cast<const char*>(data_ + start), pos_ - start);
          ++pos_;
          return s;
        };
        std::string module = line();
        std::string name = line();
        stack_.push_back(global(module, name));
        break;
      }
      case STACK_GLOBAL: {
        Ref name = pop(), module = pop();
        if (name->kind != Value::Kind::String || module->kind != Value::Kind::String)
          fail("STACK_GLOBAL needs strings");
        stack_.push_back(global(module->text, name->text));
        break;
      }
      case REDUCE: {
        Ref args = pop(), callable = pop();
        stack_.push_back(reduce(callable, args));
        break;
      }
      case BUILD: {
        Ref state = pop();
        build(top(), state);
        break;
      }
      case BINPERSID: {
        Ref pid = pop();
        if (!persistentLoad_) fail("persistent id in a pickle that should have none");
        stack_.push_back(persistentLoad_(pid));
        break;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("opcode ") + hex + " is not allowed in a weights file");
      }
    }
  }
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
