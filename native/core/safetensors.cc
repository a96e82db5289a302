#include "core/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <unordered_set>

#include "core/atomic_file.h"
#include "core/json.h"

namespace fcn::safetensors {

namespace {

constexpr uint64_t kMaxHeader = 100u << 20;  // the reference implementation's limit

struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeName kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16}, {"I64", at::kLong},
    {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},  {"U8", at::kByte},       {"BOOL", at::kBool},
};

at::ScalarType dtypeFromName(const std::string& name, const std::string& tensor) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return d.type;
  }
  throw std::invalid_argument("safetensors: tensor '" + tensor + "' has unsupported dtype '" + name + "'");
}

const char* nameOfDtype(at::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (type == d.type) return d.name;
  }
  throw std::invalid_argument(std::string("safetensors: cannot store dtype ") + c10::toString(type));
}

const json::Value* member(const json::Value& obj, const std::string& key) {
  for (const auto& [k, v] : obj.members) {
    if (k == key) return &v;
  }
  return nullptr;
}

uint64_t readU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Header parseHeader(std::string_view text, uint64_t dataSize) {
  json::Value root = json::parse(text);
  if (root.kind != json::Value::Kind::Object) throw std::invalid_argument("safetensors: header is not a JSON object");
  Header header;
  std::unordered_set<std::string_view> seen;
  for (const auto& [name, spec] : root.members) {
    if (!seen.insert(name).second) throw std::invalid_argument("safetensors: tensor '" + name + "' appears twice");
    if (name == "__metadata__") {
      if (spec.kind != json::Value::Kind::Object)
        throw std::invalid_argument("safetensors: __metadata__ is not an object");
      for (const auto& [k, v] : spec.members) {
        if (v.kind != json::Value::Kind::String) {
          throw std::invalid_argument("safetensors: __metadata__ value '" + k + "' is not a string");
        }
        header.metadata[k] = v.string;
      }
      continue;
    }
    const json::Value* dtype = spec.kind == json::Value::Kind::Object ? member(spec, "dtype") : nullptr;
    const json::Value* shape = dtype ? member(spec, "shape") : nullptr;
    const json::Value* offsets = shape ? member(spec, "data_offsets") : nullptr;
    if (!offsets || dtype->kind != json::Value::Kind::String || shape->kind != json::Value::Kind::Array ||
        offsets->kind != json::Value::Kind::Array || offsets->items.size() != 2) {
      throw std::invalid_argument("safetensors: tensor '" + name +
                                  "' needs dtype, shape and data_offsets [begin, end]");
    }
    Entry entry;
    entry.name = name;
    entry.dtype = dtypeFromName(dtype->string, name);
    for (const auto& dim : shape->items) {
      if (dim.kind != json::Value::Kind::Integer || dim.integer < 0) {
        throw std::invalid_argument("safetensors: tensor '" + name + "' has a shape entry that is not a size >= 0");
      }
      entry.shape.push_back(dim.integer);
    }
    for (const auto& o : offsets->items) {
      if (o.kind != json::Value::Kind::Integer || o.integer < 0) {
        throw std::invalid_argument("safetensors: tensor '" + name + "' has a negative or non-integer offset");
      }
    }
    entry.begin = static_cast<uint64_t>(offsets->items[0].integer);
    entry.end = static_cast<uint64_t>(offsets->items[1].integer);
    if (entry.begin > entry.end || entry.end > dataSize) {
      throw std::invalid_argument("safetensors: tensor '" + name + "' has data_offsets [" +
                                  std::to_string(entry.begin) + ", " + std::to_string(entry.end) + "] outside the " +
                                  std::to_string(dataSize) + " data bytes of the file");
    }
    int64_t numel = checkedNumel(entry.shape);
    auto itemSize = static_cast<uint64_t>(c10::elementSize(entry.dtype));
    if (static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / itemSize ||
        static_cast<uint64_t>(numel) * itemSize != entry.end - entry.begin) {
      throw std::invalid_argument("safetensors: tensor '" + name + "' declares shape [" + c10::Join(", ", entry.shape) +
                                  "] but its data_offsets span " + std::to_string(entry.end - entry.begin) + " bytes");
    }
    header.entries.push_back(std::move(entry));
  }
  std::sort(header.entries.begin(), header.entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t covered = 0;
  for (const auto& e : header.entries) {
    if (e.begin != covered) {
      throw std::invalid_argument("safetensors: tensor '" + e.name + "' " +
                                  (e.begin < covered ? "overlaps another tensor" : "leaves a hole before it"));
    }
    covered = e.end;
  }
  if (covered != dataSize) {
    throw std::invalid_argument("safetensors: " + std::to_string(dataSize - covered) +
                                " data bytes at the end belong to no tensor");
  }
  return header;
}

bool looksLike(const uint8_t* head, size_t size, uint64_t fileSize) {
  if (size < 9 || fileSize < 9) return false;
  uint64_t n = readU64(head);
  return n >= 2 && n <= kMaxHeader && n <= fileSize - 8 && head[8] == '{';
}

namespace {

/// Opens path and parses its header; dataStart is where the data section begins.
Header openAndParse(const std::string& path, std::ifstream& in, uint64_t& dataStart) {
  in.open(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  uint64_t fileSize = std::filesystem::file_size(path);
  uint8_t lengthBytes[8];
  if (fileSize < 8 || !in.read(reinterpret_cast<char*>(lengthBytes), 8)) {
    throw std::invalid_argument("safetensors: '" + path + "' is shorter than its 8-byte header length");
  }
  uint64_t headerSize = readU64(lengthBytes);
  if (headerSize > kMaxHeader || headerSize > fileSize - 8) {
    throw std::invalid_argument("safetensors: '" + path + "' declares a " + std::to_string(headerSize) +
                                "-byte header but the file has " + std::to_string(fileSize - 8) + " bytes after it");
  }
  std::string text(headerSize, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(headerSize))) {
    throw std::runtime_error("safetensors: cannot read the header of '" + path + "'");
  }
  dataStart = 8 + headerSize;
  return parseHeader(text, fileSize - dataStart);
}

}  // namespace

WeightsFile read(const std::string& path) {
  std::ifstream in;
  uint64_t dataStart = 0;
  Header header = openAndParse(path, in, dataStart);
  WeightsFile file{{}, std::move(header.metadata)};
  NamedTensors& out = file.tensors;
  for (const auto& e : header.entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype));
    in.seekg(static_cast<std::streamoff>(dataStart + e.begin));
    if (e.end > e.begin && !in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(e.end - e.begin))) {
      throw std::runtime_error("safetensors: cannot read the bytes of tensor '" + e.name + "' in '" + path + "'");
    }
    out.emplace_back(e.name, std::move(t));
  }
  return file;
}

void write(const std::string& path, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> data;
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      header += (first ? "" : ",") + json::quote(k) + ":" + json::quote(v);
      first = false;
    }
    header += "}";
  }
  uint64_t offset = 0;
  std::unordered_set<std::string_view> names;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") throw std::invalid_argument("safetensors: '__metadata__' cannot name a tensor");
    if (!names.insert(name).second)
      throw std::invalid_argument("safetensors: tensor name '" + name + "' appears twice");
    at::Tensor cpu = tensor.detach().to(at::kCPU).contiguous();
    const char* dtype = nameOfDtype(cpu.scalar_type());
    uint64_t end = offset + cpu.nbytes();
    if (header.size() > 1) header += ",";
    header += json::quote(name) + ":{\"dtype\":\"" + dtype + "\",\"shape\":[" + c10::Join(",", cpu.sizes()) +
              "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(end) + "]}";
    offset = end;
    data.push_back(std::move(cpu));
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  writeAtomically(path, [&](std::ostream& out) {
    uint8_t lengthBytes[8];
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) lengthBytes[i] = static_cast<uint8_t>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(lengthBytes), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& t : data) {
      out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    }
  });
}

}  // namespace fcn::safetensors
