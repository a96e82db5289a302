// Files written by torch.save: the zip format (PyTorch >= 1.6) and the legacy format of
// back-to-back pickles followed by raw storages (torchvision's older ResNet files).
#pragma once

#include <string>

#include "core/pickle.h"
#include "core/tensor_data.h"

namespace fcn::torch_save {

/// The tensors of a torch.save file whose top-level object is a dict (an OrderedDict state
/// dict or a checkpoint dict): nested dicts are flattened with '.', other values skipped.
/// Zip files are checked record by record before libtorch's reader opens them
/// (zip_directory.h), and the records that are not storages or data.pkl may hold 4 KiB at most.
NamedTensors read(const std::string& path);

}  // namespace fcn::torch_save
