#include "core/atomic_file.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace fcn {

namespace {

namespace fs = std::filesystem;

/// Removes PATH.tmp-PID files whose writer no longer runs.
void removeStaleTemps(const fs::path& target) {
  std::error_code ec;
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string prefix = target.filename().string() + ".tmp-";
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH) fs::remove(it->path(), ec);
  }
}

/// Why a file could not be created at path, in the user's words.
std::string whyNotWritable(const fs::path& path, int error) {
  std::error_code ec;
  fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::exists(dir, ec)) return "its folder '" + dir.string() + "' does not exist";
  if (!fs::is_directory(dir, ec)) return "'" + dir.string() + "' is not a folder";
  return std::strerror(error);
}

}  // namespace

void writeAtomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  fs::path target(path);
  removeStaleTemps(target);
  std::string temp = path + ".tmp-" + std::to_string(getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write '" + path + "': " + whyNotWritable(target, errno));
    write(out);
    out.flush();
    if (!out) {
      int error = errno;
      out.close();
      std::remove(temp.c_str());
      throw std::runtime_error("writing '" + path + "' failed: " + std::strerror(error));
    }
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    std::remove(temp.c_str());
    throw std::runtime_error("cannot move the new file into '" + path + "': " + ec.message());
  }
}

}  // namespace fcn
