// Files written by torch.save: the zip format (PyTorch >= 1.6) and the legacy format of
// back-to-back pickles followed by raw storages (torchvision's older ResNet files).
#pragma once

#include <string>

#include "pickle.h"
#include "tensor_data.h"

namespace fcn::torch_save {

/// The tensors of a torch.save file whose top-level object is a dict (an OrderedDict state
/// dict or a checkpoint dict): nested dicts are flattened with '.', other values skipped.
NamedTensors read(const std::string& path);

/// Flattens the tensors of an unpickled dict into out, keys joined with '.'.
void collectTensors(const pickle::Ref& value, const std::string& prefix, NamedTensors& out);

}  // namespace fcn::torch_save
