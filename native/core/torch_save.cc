#include "core/torch_save.h"

#include <caffe2/serialize/inline_container.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

#include "core/zip_directory.h"

namespace fcn::torch_save {

namespace {

using pickle::Ref;
using pickle::Value;

std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::vector<uint8_t> bytes(std::filesystem::file_size(path));
  if (!bytes.empty() && !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()))) {
    throw std::runtime_error("cannot read '" + path + "'");
  }
  return bytes;
}

/// The ('storage', StorageType, key, location, numel[, view]) tuple of a persistent id.
struct StorageId {
  at::ScalarType dtype;
  std::string key;
  int64_t numel;
};

StorageId parseStorageId(const Ref& pid) {
  const auto& items = pid->items;
  if (pid->kind != Value::Kind::Tuple || items.size() < 5 || items[0]->kind != Value::Kind::String ||
      items[0]->text != "storage" || items[1]->kind != Value::Kind::Global || items[2]->kind != Value::Kind::String ||
      items[4]->kind != Value::Kind::Int || items[4]->integer < 0) {
    throw std::invalid_argument("pickle: malformed storage record");
  }
  at::ScalarType dtype = pickle::storageDtype(items[1]->text);
  if (dtype == at::ScalarType::Undefined) throw std::invalid_argument("pickle: unknown storage type " + items[1]->text);
  if (items.size() > 5 && items[5]->kind != Value::Kind::None) {
    throw std::invalid_argument("pickle: storage views (a pre-1.0 feature) are not supported");
  }
  return {dtype, items[2]->text, items[4]->integer};
}

void checkFits(int64_t numel, at::ScalarType dtype, uint64_t available, const std::string& key) {
  auto item = static_cast<uint64_t>(c10::elementSize(dtype));
  if (static_cast<uint64_t>(numel) > available / item) {
    throw std::invalid_argument("storage '" + key + "' declares " + std::to_string(numel) +
                                " elements, more than the file holds");
  }
}

NamedTensors fromTop(const Ref& top, const std::string& path) {
  if (top->kind != Value::Kind::Dict) {
    throw std::invalid_argument("'" + path +
                                "' holds no dict of tensors (a whole pickled model is not supported: "
                                "save model.state_dict() instead)");
  }
  NamedTensors out;
  pickle::collectTensors(top, out);
  return out;
}

/// The bytes of a small stored record.
std::string readRecord(const std::string& path, const zip::Record& record) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(record.size, '\0');
  in.seekg(static_cast<std::streamoff>(record.dataOffset));
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    throw std::runtime_error("cannot read record '" + record.name + "' of '" + path + "'");
  }
  return bytes;
}

/// The zip's records checked before libtorch reads any: stored, inside the file, not
/// overlapping, and small where a record only holds a few bytes (version, byteorder, ...);
/// then what libtorch's reader requires of them, since it throws from its constructor, in
/// its own words and leaking its zip state, otherwise (found by fuzzing): records in a
/// folder, and a version record holding a format version this libtorch reads.
void checkZip(const std::string& path) {
  constexpr uint64_t kSmallRecord = 4096;
  auto records = zip::readDirectory(path);
  if (records.empty()) throw std::invalid_argument("'" + path + "' is a zip without records, not a torch.save file");
  const std::string& first = records.front().name;
  auto folderEnd = first.find('/');
  if (folderEnd == std::string::npos) {
    throw std::invalid_argument("'" + path + "' is a zip whose first record '" + first +
                                "' is not in a folder, as torch.save's are");
  }
  const std::string folder = first.substr(0, folderEnd + 1);
  const zip::Record* version = nullptr;
  for (const auto& record : records) {
    auto slash = record.name.find('/');
    std::string inside = slash == std::string::npos ? record.name : record.name.substr(slash + 1);
    bool isStorage = inside.rfind("data/", 0) == 0;
    if (!isStorage && inside != "data.pkl" && record.size > kSmallRecord) {
      throw std::invalid_argument("record '" + record.name + "' holds " + std::to_string(record.size) +
                                  " bytes; only storages and data.pkl may exceed " + std::to_string(kSmallRecord));
    }
    // libtorch reads .data/version where there is one, else version.
    if (record.name == folder + ".data/version" || (record.name == folder + "version" && version == nullptr)) {
      version = &record;
    }
  }
  if (version == nullptr) {
    throw std::invalid_argument("'" + path + "' has no version record (" + folder +
                                "version), which torch.save writes");
  }
  std::string text = readRecord(path, *version);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  bool digits = !text.empty() && text.size() <= 18 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  uint64_t number = digits ? std::stoull(text) : 0;
  if (!digits || number < caffe2::serialize::kMinSupportedFileFormatVersion ||
      number > caffe2::serialize::kMaxSupportedFileFormatVersion) {
    throw std::invalid_argument("'" + path + "' is of torch.save format version '" + text.substr(0, 20) +
                                "'; this libtorch reads versions " +
                                std::to_string(caffe2::serialize::kMinSupportedFileFormatVersion) + " to " +
                                std::to_string(caffe2::serialize::kMaxSupportedFileFormatVersion));
  }
}

NamedTensors readZip(const std::string& path, uint64_t fileSize) {
  checkZip(path);
  caffe2::serialize::PyTorchStreamReader reader(path);
  if (reader.hasRecord("byteorder")) {
    auto [data, size] = reader.getRecord("byteorder");
    std::string order(static_cast<const char*>(data.get()), size);
    if (order != "little") throw std::invalid_argument("'" + path + "' is " + order + "-endian; only little is read");
  }
  if (!reader.hasRecord("data.pkl")) throw std::invalid_argument("'" + path + "' has no data.pkl record");
  if (reader.getRecordSize("data.pkl") > fileSize) {
    throw std::invalid_argument("'" + path + "' declares a data.pkl larger than the file");
  }
  auto [pkl, pklSize] = reader.getRecord("data.pkl");
  std::map<std::string, at::Tensor> storages;
  auto load = [&](const Ref& pid) -> Ref {
    StorageId id = parseStorageId(pid);
    auto it = storages.find(id.key);
    if (it == storages.end()) {
      std::string record = "data/" + id.key;
      if (!reader.hasRecord(record)) throw std::invalid_argument("pickle: storage record " + record + " is missing");
      checkFits(id.numel, id.dtype, fileSize, id.key);
      size_t bytes = static_cast<size_t>(id.numel) * c10::elementSize(id.dtype);
      at::Tensor storage = at::empty({id.numel}, at::TensorOptions().dtype(id.dtype));
      size_t recordSize = reader.getRecordSize(record);
      if (recordSize != bytes) {
        throw std::invalid_argument("storage record " + record + " has " + std::to_string(recordSize) +
                                    " bytes, not the " + std::to_string(bytes) + " it declares");
      }
      if (bytes > 0) reader.getRecord(record, storage.data_ptr(), bytes);
      it = storages.emplace(id.key, storage).first;
    } else if (it->second.scalar_type() != id.dtype || it->second.numel() < id.numel) {
      throw std::invalid_argument("pickle: storage " + id.key + " is used with two different types");
    }
    Ref s = std::make_shared<Value>();
    s->kind = Value::Kind::Storage;
    s->tensor = it->second;
    return s;
  };
  pickle::Unpickler unpickler(static_cast<const uint8_t*>(pkl.get()), pklSize, load);
  return fromTop(unpickler.load(), path);
}

/// Legacy layout: magic number, protocol version, sys info, the object (storages as
/// persistent ids), the list of storage keys, then per key an int64 count and the bytes.
NamedTensors readLegacy(const std::string& path) {
  std::vector<uint8_t> bytes = readFile(path);
  static const uint8_t kMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  std::map<std::string, at::Tensor> storages;
  auto load = [&](const Ref& pid) -> Ref {
    StorageId id = parseStorageId(pid);
    auto it = storages.find(id.key);
    if (it == storages.end()) {
      checkFits(id.numel, id.dtype, bytes.size(), id.key);
      it = storages.emplace(id.key, at::empty({id.numel}, at::TensorOptions().dtype(id.dtype))).first;
    }
    Ref s = std::make_shared<Value>();
    s->kind = Value::Kind::Storage;
    s->tensor = it->second;
    return s;
  };
  pickle::Unpickler unpickler(bytes.data(), bytes.size(), load);
  Ref magic = unpickler.load();
  if (magic->kind != Value::Kind::Int || magic->text.size() != sizeof kMagic ||
      std::memcmp(magic->text.data(), kMagic, sizeof kMagic) != 0) {
    throw std::invalid_argument("'" + path + "' is neither a zip nor a legacy torch.save file (bad magic number)");
  }
  Ref protocol = unpickler.load();
  if (protocol->kind != Value::Kind::Int || protocol->integer != 1001) {
    throw std::invalid_argument("'" + path + "' has unsupported legacy protocol version");
  }
  Ref sysInfo = unpickler.load();
  Ref littleEndian = pickle::dictGet(sysInfo, "little_endian");
  if (littleEndian && littleEndian->kind == Value::Kind::Bool && !littleEndian->boolean) {
    throw std::invalid_argument("'" + path + "' is big-endian; only little-endian files are read");
  }
  Ref top = unpickler.load();
  Ref keys = unpickler.load();
  if (keys->kind != Value::Kind::List) throw std::invalid_argument("'" + path + "' has no storage key list");
  size_t pos = unpickler.position();
  for (const auto& key : keys->items) {
    if (key->kind != Value::Kind::String)
      throw std::invalid_argument("'" + path + "' has a storage key that is not a string");
    auto it = storages.find(key->text);
    if (it == storages.end())
      throw std::invalid_argument("'" + path + "' lists storage " + key->text + " that nothing uses");
    if (bytes.size() - pos < 8) throw std::invalid_argument("'" + path + "' is truncated in storage " + key->text);
    int64_t count = 0;
    std::memcpy(&count, bytes.data() + pos, 8);
    pos += 8;
    at::Tensor& storage = it->second;
    if (count != storage.numel()) {
      throw std::invalid_argument("'" + path + "': storage " + key->text + " holds " + std::to_string(count) +
                                  " elements, its record says " + std::to_string(storage.numel()));
    }
    size_t n = storage.nbytes();
    if (bytes.size() - pos < n) throw std::invalid_argument("'" + path + "' is truncated in storage " + key->text);
    if (n > 0) std::memcpy(storage.data_ptr(), bytes.data() + pos, n);
    pos += n;
  }
  if (storages.size() != keys->items.size()) {
    throw std::invalid_argument("'" + path + "' leaves some storages without data");
  }
  return fromTop(top, path);
}

}  // namespace

NamedTensors read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  char head[4] = {0, 0, 0, 0};
  in.read(head, 4);
  uint64_t size = std::filesystem::file_size(path);
  if (std::memcmp(head, "PK\x03\x04", 4) == 0) return readZip(path, size);
  if (static_cast<uint8_t>(head[0]) == 0x80) return readLegacy(path);
  throw std::invalid_argument("'" + path + "' is not a torch.save file");
}

}  // namespace fcn::torch_save
