// A small, strict JSON reader for safetensors headers: objects, arrays, strings, integers,
// booleans and null, with a depth limit. Floats are refused (safetensors has none).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fcn::json {

struct Member;

struct Value {
  enum class Kind { Null, Bool, Integer, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  int64_t integer = 0;
  std::string string;
  std::vector<Value> items;     // Array
  std::vector<Member> members;  // Object, in document order
};

/// One key and value of an object. (A struct, not std::pair<std::string, Value>: a pair
/// needs Value complete where Value declares it, which clang refuses.)
struct Member {
  std::string key;
  Value value;
};

/// Parses text; throws std::invalid_argument saying where and what went wrong.
Value parse(std::string_view text);

/// text as a JSON string literal, quotes included.
std::string quote(std::string_view text);

}  // namespace fcn::json
