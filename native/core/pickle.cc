#include "core/pickle.h"

#include <cstring>
#include <stdexcept>
#include <unordered_map>

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

}  // namespace

Unpickler::Unpickler(const uint8_t* data, size_t size, PersistentLoad persistentLoad)
    : data_(data), size_(size), persistentLoad_(std::move(persistentLoad)) {}

Unpickler::~Unpickler() {
  stack_.clear();
  for (const Ref& c : containers_) c->items.clear();
}

Ref Unpickler::container(Value::Kind kind) {
  Ref c = makeValue(kind);
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
    Ref v = makeValue(kind);
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
      case NONE: stack_.push_back(makeValue(Value::Kind::None)); break;
      case NEWTRUE:
      case NEWFALSE: {
        Ref b = makeValue(Value::Kind::Bool);
        b->boolean = op == NEWTRUE;
        stack_.push_back(b);
        break;
      }
      case BININT: {
        Ref i = makeValue(Value::Kind::Int);
        i->integer = static_cast<int32_t>(readUint(4));
        stack_.push_back(i);
        break;
      }
      case BININT1:
      case BININT2: {
        Ref i = makeValue(Value::Kind::Int);
        i->integer = static_cast<int64_t>(readUint(op == BININT1 ? 1 : 2));
        stack_.push_back(i);
        break;
      }
      case LONG1:
      case LONG4: {
        uint64_t n = readUint(op == LONG1 ? 1 : 4);
        if (n > size_ - pos_) fail("long integer longer than the data");
        const uint8_t* p = take(static_cast<size_t>(n));
        Ref i = makeValue(Value::Kind::Int);
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
        Ref f = makeValue(Value::Kind::Float);
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

}  // namespace fcn::pickle
