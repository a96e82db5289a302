// Files written whole or not at all: the bytes go to PATH.tmp-PID and are renamed onto PATH
// once complete, so a process killed at any moment leaves the previous file intact. The
// temporary files of writers that died are removed by the next writer of the same path.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace fcn {

/// Writes path through write(stream) atomically; errors name path and the system's reason.
void writeAtomically(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace fcn
