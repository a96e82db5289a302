#include "models/cuda_graphs.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <list>
#include <mutex>
#include <stdexcept>

#include "core/autocast.h"
#include "core/backends.h"

#ifdef FCN_TORCH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace fcn::cudaGraphs {

#ifdef FCN_TORCH_CUDA

namespace {

constexpr size_t kMaxGraphs = 8;

/// What a graph was captured for: the model, its input and the settings that choose kernels.
struct Signature {
  const torch::nn::Module* model = nullptr;
  std::vector<int64_t> sizes, strides;
  at::ScalarType dtype = at::kFloat;
  c10::Device device{c10::kCPU};
  int key = 0, autocast = -1;
  bool channelsLast = false, subpixel = false;
  bool operator==(const Signature&) const = default;
};

/// What the captured kernels depend on in the model: its modules, and where each parameter
/// and buffer lives with its dtype and shape. Values changed in place keep it.
using Fingerprint = std::vector<int64_t>;

Fingerprint fingerprintOf(const torch::nn::Module& model) {
  Fingerprint out;
  auto add = [&out](const at::Tensor& t) {
    out.push_back(static_cast<int64_t>(reinterpret_cast<intptr_t>(t.defined() ? t.data_ptr() : nullptr)));
    if (!t.defined()) return;
    out.push_back(static_cast<int64_t>(t.scalar_type()));
    out.insert(out.end(), t.sizes().begin(), t.sizes().end());
    out.insert(out.end(), t.strides().begin(), t.strides().end());
  };
  for (const auto& m : model.modules(true)) out.push_back(static_cast<int64_t>(reinterpret_cast<intptr_t>(m.get())));
  for (const auto& p : model.parameters(true)) add(p);
  for (const auto& b : model.buffers(true)) add(b);
  return out;
}

struct Graph {
  Graph(Signature s, const at::Tensor& first) : signature(std::move(s)), owner(first.getIntrusivePtr()) {}
  Signature signature;
  // The model's first parameter, held weakly: a model freed and another made at the same
  // address are told apart (the weak reference keeps the address from being reused).
  c10::weak_intrusive_ptr<c10::TensorImpl> owner;
  Fingerprint fingerprint;  // of the model when captured (or when its capture failed)
  at::Tensor input;         // where a replay reads its input from
  NamedOutputs outputs;     // where it writes
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  bool failed = false;  // could not be captured with this fingerprint: runs as is
  uint64_t lastUse = 0;

  bool isFor(const Signature& s, const at::Tensor& first) const {
    return !owner.expired() && owner._unsafe_get_target() == first.unsafeGetTensorImpl() && signature == s;
  }
};

using PoolId = decltype(at::cuda::graph_pool_handle());

std::mutex mutex;
std::list<Graph> graphs;  // guarded by mutex
std::atomic<bool> anyGraphs{false};
uint64_t useClock = 0;

/// Drops the graphs of freed models, or all of them when the switch is off. Holds mutex.
void prune() {
  if (!backends::cudaGraphs) {
    graphs.clear();
  } else {
    graphs.remove_if([](const Graph& g) { return g.owner.expired(); });
  }
  anyGraphs = !graphs.empty();
}

/// At exit, the graphs are destroyed while the CUDA driver still runs: this handler is
/// registered at the first capture, after CUDA's own, so it runs before it. A job still
/// running holds the mutex; the graphs are then left to the process's end.
void clearAtExit() {
  std::unique_lock<std::mutex> lock(mutex, std::try_to_lock);
  if (lock.owns_lock()) graphs.clear();
}

/// A capture that failed is left as it is: its graph object is never destroyed (what its
/// destructor does after a failed capture differs between libtorch versions), and the
/// caching allocator stops routing this thread's allocations to its pool. Its pool's
/// memory stays taken; failures are rare (a forward that waits for the GPU) and one per
/// model and input shape.
void abandon(std::unique_ptr<at::cuda::CUDAGraph> graph, c10::DeviceIndex device, PoolId pool) {
  try {
    c10::cuda::CUDACachingAllocator::endAllocateToPool(device, pool);
  } catch (const std::exception&) {  // the capture's own end already did
  }
  (void)graph.release();  // deliberately kept alive (see above)
}

/// The graph of run(input) into g: a warm-up run and the capture on a side stream, as
/// torch.cuda.graph does. Throws if run cannot be captured or moves the weights.
void capture(Graph& g, torch::nn::Module& model, const at::Tensor& input,
             const std::function<NamedOutputs(const at::Tensor&)>& run) {
  static const bool clearedAtExit = std::atexit(clearAtExit) == 0;
  (void)clearedAtExit;
  g.graph.reset();
  g.outputs.clear();
  {
    // Normal tensors even when the call runs in inference mode (predict): a later call
    // outside it copies its input into this one.
    c10::InferenceMode normalTensors(false);
    g.input = at::empty_strided(input.sizes(), input.strides(), input.options());
  }
  g.input.copy_(input);
  c10::DeviceIndex device = input.device().index();
  c10::cuda::device_synchronize();
  {
    c10::cuda::CUDAStreamGuard onSide(c10::cuda::getStreamFromPool(false, device));
    run(g.input);  // warm-up: the weights are laid out, cuDNN picks its kernels
    c10::cuda::device_synchronize();
    g.fingerprint = fingerprintOf(model);
    auto pool = at::cuda::graph_pool_handle();
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    graph->capture_begin(pool, cudaStreamCaptureModeThreadLocal);
    try {
      g.outputs = run(g.input);
      graph->capture_end();
    } catch (...) {
      g.outputs.clear();
      try {
        graph->capture_end();  // ends the stream's capture if what failed did not
      } catch (const std::exception&) {
      }
      abandon(std::move(graph), device, pool);
      throw;
    }
    g.graph = std::move(graph);
  }
  c10::cuda::device_synchronize();
  if (fingerprintOf(model) != g.fingerprint) {
    g.graph.reset();
    g.outputs.clear();
    throw std::runtime_error("the forward moved the model's weights while it was captured");
  }
}

}  // namespace

NamedOutputs forward(torch::nn::Module& model, const at::Tensor& input, int key,
                     const std::function<NamedOutputs(const at::Tensor&)>& run) {
  if (anyGraphs) {
    std::lock_guard<std::mutex> lock(mutex);
    prune();
  }
  if (!backends::cudaGraphs || !input.is_cuda() || at::GradMode::is_enabled()) return run(input);
  for (const auto& m : model.modules(true)) {
    if (m->is_training()) return run(input);
  }
  auto params = model.parameters(true);
  if (params.empty()) return run(input);
  Signature signature;
  signature.model = &model;
  signature.sizes = input.sizes().vec();
  signature.strides = input.strides().vec();
  signature.dtype = input.scalar_type();
  signature.device = input.device();
  signature.key = key;
  auto reduced = autocast::dtypeFor(c10::DeviceType::CUDA);
  signature.autocast = reduced ? static_cast<int>(*reduced) : -1;
  signature.channelsLast = backends::channelsLast;
  signature.subpixel = backends::subpixelUpsampling;

  c10::cuda::CUDAGuard deviceGuard(input.device());
  std::lock_guard<std::mutex> lock(mutex);
  auto found =
      std::find_if(graphs.begin(), graphs.end(), [&](const Graph& g) { return g.isFor(signature, params[0]); });
  if (found == graphs.end()) {
    // First sight of this call: it runs as usual (cuDNN picks its kernels, weights are laid
    // out); the next one is captured.
    if (graphs.size() >= kMaxGraphs) {
      graphs.erase(std::min_element(graphs.begin(), graphs.end(),
                                    [](const Graph& a, const Graph& b) { return a.lastUse < b.lastUse; }));
    }
    graphs.emplace_back(signature, params[0]).lastUse = ++useClock;
    anyGraphs = true;
    return run(input);
  }
  Graph& g = *found;
  g.lastUse = ++useClock;
  Fingerprint now = fingerprintOf(model);
  if (g.failed && g.fingerprint == now) return run(input);
  if (!g.graph || g.fingerprint != now) {
    try {
      capture(g, model, input, run);
      g.failed = false;
    } catch (const std::exception&) {
      // Not capturable: this call, and the next ones until the model changes, run as is.
      g.graph.reset();
      g.input = at::Tensor();
      g.outputs.clear();
      g.fingerprint = fingerprintOf(model);
      g.failed = true;
      return run(input);
    }
  }
  g.input.copy_(input);
  g.graph->replay();
  NamedOutputs outputs;
  for (const auto& [name, out] : g.outputs) outputs.emplace_back(name, out.clone());
  return outputs;
}

size_t kept() {
  std::lock_guard<std::mutex> lock(mutex);
  prune();
  return static_cast<size_t>(
      std::count_if(graphs.begin(), graphs.end(), [](const Graph& g) { return g.graph != nullptr; }));
}

void clear() {
  std::lock_guard<std::mutex> lock(mutex);
  graphs.clear();
  anyGraphs = false;
}

#else

NamedOutputs forward(torch::nn::Module&, const at::Tensor& input, int,
                     const std::function<NamedOutputs(const at::Tensor&)>& run) {
  return run(input);
}

size_t kept() { return 0; }

void clear() {}

#endif

}  // namespace fcn::cudaGraphs
