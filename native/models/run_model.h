// The one way a model runs: every entry point (forward, forwardAsync, prediction, training
// and evaluation steps) calls runModel, which owns the memory format (weights and input
// channels-last on the CPU, where oneDNN's convolutions are fastest) and the dispatch to
// the model's kind. Callers follow no protocol.
#pragma once

#include <torch/torch.h>

#include "models/registry.h"

namespace fcn {

/// model's output for input: model's 4-d CPU weights are stored channels-last once (values,
/// names and state dicts unchanged; the backends.channelsLast switch turns this off), the
/// input is laid out to match, and the model's kind runs it. The caller holds the model lock.
at::Tensor runModel(torch::nn::Module& model, const at::Tensor& input);

/// The argmax over the classes of runModel(model, input), int64 [N, H, W], as the model's kind
/// gives it (forwardModuleLabels: an FCN whose sub-pixel upsampling comes last never writes its
/// full-size logits).
at::Tensor runModelLabels(torch::nn::Module& model, const at::Tensor& input);

/// runModel for every output of model ({"out", "aux"} for a segmentation model with an
/// auxiliary classifier; {"out"} for the kinds with one output).
NamedOutputs runModelOutputs(torch::nn::Module& model, const at::Tensor& input);

/// The device of model's first parameter (the CPU for a model without parameters).
c10::Device deviceOf(const torch::nn::Module& model);

}  // namespace fcn
