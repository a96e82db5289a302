// A module's parameters and buffers by name, as PyTorch's state_dict() orders them, and
// the checked copies between modules and state dicts (load_state_dict, replicas, clones).
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "core/tensor_data.h"

namespace fcn {

/// PyTorch's state_dict order: a module's own parameters, then its own buffers, then its
/// children's entries, depth first. The tensors are the module's own (shared).
NamedTensors stateDict(const torch::nn::Module& m);

/// What loadStateDict did not match (reported when not strict).
struct LoadReport {
  std::vector<std::string> missingKeys, unexpectedKeys;
};

/// Copies the entries of given into m's parameters and buffers of the same names, in place.
/// Shape mismatches, and with strict missing or unexpected keys, throw before anything is
/// copied, naming the entries.
LoadReport loadStateDict(torch::nn::Module& m, const NamedTensors& given, bool strict);

/// Copies src's parameters and buffers by name into dst (a module of the same structure,
/// moved to device first when given), with their requires_grad, and the training mode of
/// each of src's modules.
/// The clone() of this addon's modules builds the structure and then calls this.
void copyState(const torch::nn::Module& src, torch::nn::Module& dst, const std::optional<torch::Device>& device);

}  // namespace fcn
