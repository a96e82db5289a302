// A small, strict JSON reader for safetensors headers: objects, arrays, strings, integers,
// booleans and null, with a depth limit. Floats are refused (safetensors has none).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fcn::json {

struct Value {
  enum class Kind { Null, Bool, Integer, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  int64_t integer = 0;
  std::string string;
  std::vector<Value> items;                            // Array
  std::vector<std::pair<std::string, Value>> members;  // Object, in document order
};

/// Parses text; throws std::invalid_argument saying where and what went wrong.
Value parse(std::string_view text);

/// text as a JSON string literal, quotes included.
std::string quote(std::string_view text);

}  // namespace fcn::json
