// Weight files, whatever wrote them: the format is told by content, not by name
// (safetensors, or torch.save's zip and legacy formats), and errors name the file.
#pragma once

#include <string>

#include "core/tensor_data.h"

namespace fcn::weights {

/// Every tensor of the weights file at path, in file order, with its metadata.
WeightsFile read(const std::string& path);

}  // namespace fcn::weights
