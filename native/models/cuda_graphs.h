// CUDA graphs of a model's inference forward (torch.backends.cudaGraphs, off by default): on
// a GPU, a forward without autograd of a model in eval mode is captured once per input shape
// (layout, dtype, device, autocast and backends settings) and then replayed, which launches
// its hundreds of kernels as one and takes the per-kernel launch cost off small batches, as
// torch.compile's "reduce-overhead" mode does. The first call of a shape runs as usual (it
// warms cuDNN and lays the weights out), the second captures. A graph reads the weights where
// they are, so values loaded or trained in place are seen; weights moved (another device,
// dtype or layout) or modules added are captured again. Outputs are copies, never the graph's own memory.
// Each graph keeps its activations' memory: at most 8 are kept (least recently used goes).
#pragma once

#include <torch/torch.h>

#include <functional>

#include "models/registry.h"

namespace fcn::cudaGraphs {

/// run(input), replayed from a captured graph when the switch is on and the call qualifies
/// (input on a GPU, autograd off, every module of model in eval mode), else called as is.
/// `key` tells apart calls that run differently for the same model and input (which outputs).
/// A forward that cannot be captured (it waits for the GPU, say) runs as is from then on.
NamedOutputs forward(torch::nn::Module& model, const at::Tensor& input, int key,
                     const std::function<NamedOutputs(const at::Tensor&)>& run);

/// How many captured graphs are kept.
size_t kept();

/// Drops every kept graph; their memory goes back to the caching allocator.
void clear();

}  // namespace fcn::cudaGraphs
