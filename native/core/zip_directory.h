// The central directory of a zip file (torch.save's format since PyTorch 1.6), read and
// checked before libtorch's reader touches the file: every record must be stored (torch.save
// never compresses, so no record can inflate beyond the file: no zip bombs), inside the
// file, consistent with its local header, and no two records may share bytes (a file cannot
// list the same data under many names) or a name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fcn::zip {

struct Record {
  std::string name;
  uint64_t dataOffset = 0;  // where its bytes start in the file
  uint64_t size = 0;        // its bytes (stored: the same compressed and not)
};

/// The records of the zip file at path, checked as above; throws std::invalid_argument
/// saying what is wrong with which record.
std::vector<Record> readDirectory(const std::string& path);

}  // namespace fcn::zip
