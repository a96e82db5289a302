#include "core/zip_directory.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <unordered_set>

namespace fcn::zip {

namespace {

constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64EndOfDirectory = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint64_t kMaxRecords = 1u << 20;

uint64_t le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

class File {
 public:
  explicit File(const std::string& path) : in_(path, std::ios::binary), size_(std::filesystem::file_size(path)) {
    if (!in_) throw std::runtime_error("cannot open '" + path + "'");
  }
  uint64_t size() const { return size_; }
  std::vector<uint8_t> read(uint64_t offset, uint64_t length) {
    if (offset > size_ || length > size_ - offset)
      throw std::invalid_argument("zip: a structure lies past the end of the file");
    std::vector<uint8_t> out(length);
    in_.seekg(static_cast<std::streamoff>(offset));
    if (length > 0 && !in_.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(length))) {
      throw std::runtime_error("zip: cannot read the file");
    }
    return out;
  }

 private:
  std::ifstream in_;
  uint64_t size_;
};

struct Directory {
  uint64_t count = 0, offset = 0, size = 0;
};

/// The end-of-directory record (zip64's when present), found from the end of the file.
Directory findDirectory(File& file) {
  uint64_t tail = std::min<uint64_t>(file.size(), 65535 + 22);
  std::vector<uint8_t> bytes = file.read(file.size() - tail, tail);
  for (uint64_t i = tail >= 22 ? tail - 22 + 1 : 0; i-- > 0;) {
    const uint8_t* p = bytes.data() + i;
    if (le(p, 4) != kEndOfDirectory) continue;
    Directory d{le(p + 10, 2), le(p + 16, 4), le(p + 12, 4)};
    uint64_t at = file.size() - tail + i;
    if ((d.count == 0xFFFF || d.offset == 0xFFFFFFFF || d.size == 0xFFFFFFFF) && at >= 20) {
      std::vector<uint8_t> locator = file.read(at - 20, 20);
      if (le(locator.data(), 4) != kZip64Locator) throw std::invalid_argument("zip: the zip64 locator is missing");
      std::vector<uint8_t> record = file.read(le(locator.data() + 8, 8), 56);
      if (le(record.data(), 4) != kZip64EndOfDirectory) throw std::invalid_argument("zip: bad zip64 directory record");
      d = {le(record.data() + 32, 8), le(record.data() + 48, 8), le(record.data() + 40, 8)};
    }
    return d;
  }
  throw std::invalid_argument("zip: no end-of-directory record (truncated or not a zip file)");
}

/// The zip64 extra field's values for the fields that hold 0xFFFFFFFF, in their order.
void applyZip64(const uint8_t* extra, uint64_t length, uint64_t& size, uint64_t& compressed, uint64_t& offset) {
  for (uint64_t i = 0; i + 4 <= length;) {
    uint64_t id = le(extra + i, 2), n = le(extra + i + 2, 2);
    if (i + 4 + n > length) break;
    if (id == 0x0001) {
      const uint8_t* v = extra + i + 4;
      uint64_t used = 0;
      for (uint64_t* field : {&size, &compressed, &offset}) {
        if (*field != 0xFFFFFFFF) continue;
        if (used + 8 > n) throw std::invalid_argument("zip: a zip64 extra field is too short");
        *field = le(v + used, 8);
        used += 8;
      }
    }
    i += 4 + n;
  }
}

}  // namespace

std::vector<Record> readDirectory(const std::string& path) {
  File file(path);
  Directory d = findDirectory(file);
  if (d.count > kMaxRecords) throw std::invalid_argument("zip: more than " + std::to_string(kMaxRecords) + " records");
  if (d.offset > file.size() || d.size > file.size() - d.offset) {
    throw std::invalid_argument("zip: the central directory lies outside the file");
  }
  std::vector<uint8_t> dir = file.read(d.offset, d.size);
  std::vector<Record> records;
  std::vector<std::pair<uint64_t, uint64_t>> spans;  // [local header, end of data) of each record
  std::unordered_set<std::string> names;
  uint64_t pos = 0;
  for (uint64_t r = 0; r < d.count; ++r) {
    if (pos + 46 > dir.size() || le(dir.data() + pos, 4) != kDirectoryEntry) {
      throw std::invalid_argument("zip: the central directory is malformed at entry " + std::to_string(r));
    }
    const uint8_t* e = dir.data() + pos;
    uint64_t method = le(e + 10, 2), compressed = le(e + 20, 4), size = le(e + 24, 4);
    uint64_t nameLength = le(e + 28, 2), extraLength = le(e + 30, 2), commentLength = le(e + 32, 2);
    uint64_t local = le(e + 42, 4);
    if (pos + 46 + nameLength + extraLength + commentLength > dir.size()) {
      throw std::invalid_argument("zip: the central directory is truncated at entry " + std::to_string(r));
    }
    std::string name(reinterpret_cast<const char*>(e + 46), nameLength);
    applyZip64(e + 46 + nameLength, extraLength, size, compressed, local);
    pos += 46 + nameLength + extraLength + commentLength;
    if (!names.insert(name).second) throw std::invalid_argument("zip: record '" + name + "' appears twice");
    if (method != 0) {
      throw std::invalid_argument("zip: record '" + name + "' is compressed (method " + std::to_string(method) +
                                  "); torch.save writes stored records only");
    }
    if (compressed != size) throw std::invalid_argument("zip: stored record '" + name + "' declares two sizes");
    std::vector<uint8_t> header = file.read(local, 30);
    if (le(header.data(), 4) != kLocalHeader) {
      throw std::invalid_argument("zip: record '" + name + "' has no local header where the directory says");
    }
    uint64_t dataOffset = local + 30 + le(header.data() + 26, 2) + le(header.data() + 28, 2);
    if (dataOffset > d.offset || size > d.offset - dataOffset) {
      throw std::invalid_argument("zip: record '" + name + "' (" + std::to_string(size) +
                                  " bytes) does not fit in the file before its central directory");
    }
    spans.emplace_back(local, dataOffset + size);
    records.push_back({name, dataOffset, size});
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].first < spans[i - 1].second) {
      throw std::invalid_argument("zip: two records share bytes of the file (overlapping records are refused)");
    }
  }
  return records;
}

}  // namespace fcn::zip
