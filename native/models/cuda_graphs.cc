#include "models/cuda_graphs.h"

#include <cstdlib>
#include <list>
#include <mutex>

#include "core/autocast.h"
#include "core/backends.h"

#ifdef FCN_TORCH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace fcn::cudaGraphs {

#ifdef FCN_TORCH_CUDA

namespace {

constexpr size_t kMaxGraphs = 8;

/// What a graph was captured for: the model and everything that changes its kernels.
struct Signature {
  const torch::nn::Module* model = nullptr;
  std::vector<int64_t> sizes, strides;
  at::ScalarType dtype = at::kFloat;
  c10::Device device{c10::kCPU};
  int key = 0, autocast = -1;
  bool channelsLast = false, subpixel = false;
  bool operator==(const Signature&) const = default;
};

struct Graph {
  Graph(Signature s, const at::Tensor& first) : signature(std::move(s)), owner(first.getIntrusivePtr()) {}
  Signature signature;
  // The model's first parameter, held weakly: a model freed and another made at the same
  // address are told apart (the weak reference keeps the address from being reused).
  c10::weak_intrusive_ptr<c10::TensorImpl> owner;
  std::vector<const void*> weights;  // the addresses the captured kernels read
  at::Tensor input;                  // where a replay reads its input from
  NamedOutputs outputs;              // where it writes
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  bool failed = false;  // could not be captured: runs as is
  uint64_t lastUse = 0;

  bool isFor(const Signature& s, const at::Tensor& first) const {
    return !owner.expired() && owner._unsafe_get_target() == first.unsafeGetTensorImpl() && signature == s;
  }
};

std::mutex mutex;
std::list<Graph> graphs;  // guarded by mutex
uint64_t useClock = 0;

std::vector<const void*> weightAddresses(const torch::nn::Module& model) {
  std::vector<const void*> out;
  for (const auto& p : model.parameters(true)) out.push_back(p.data_ptr());
  for (const auto& b : model.buffers(true)) out.push_back(b.defined() ? b.data_ptr() : nullptr);
  return out;
}

bool qualifies(const torch::nn::Module& model, const at::Tensor& input) {
  if (!backends::cudaGraphs || !input.is_cuda() || at::GradMode::is_enabled()) return false;
  for (const auto& m : model.modules(true)) {
    if (m->is_training()) return false;
  }
  return true;
}

/// The graph of run(input) into g (its input, outputs and weights' addresses): a warm-up run
/// and the capture on a side stream, as torch.cuda.graph does.
void capture(Graph& g, const at::Tensor& input, const std::function<NamedOutputs(const at::Tensor&)>& run) {
  // Graphs are destroyed at exit while the CUDA driver still runs: this handler, registered
  // after CUDA's own (at its first use, long before), runs before it.
  static const bool clearedAtExit = [] { return std::atexit([] { clear(); }) == 0; }();
  (void)clearedAtExit;
  g.graph.reset();
  g.outputs.clear();
  g.input = at::empty_strided(input.sizes(), input.strides(), input.options());
  g.input.copy_(input);
  auto index = input.device().index();
  c10::cuda::device_synchronize();
  {
    c10::cuda::CUDAStreamGuard onSide(c10::cuda::getStreamFromPool(false, index));
    run(g.input);
    c10::cuda::device_synchronize();
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    try {
      g.outputs = run(g.input);
    } catch (...) {
      g.outputs.clear();
      try {
        graph->capture_end();
      } catch (...) {  // the capture was invalidated by what failed; it has ended either way
      }
      throw;
    }
    graph->capture_end();
    g.graph = std::move(graph);
  }
  c10::cuda::device_synchronize();
}

}  // namespace

bool built() { return true; }

NamedOutputs forward(torch::nn::Module& model, const at::Tensor& input, int key,
                     const std::function<NamedOutputs(const at::Tensor&)>& run) {
  if (!backends::cudaGraphs) clear();
  if (!qualifies(model, input)) return run(input);
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

  std::lock_guard<std::mutex> lock(mutex);
  graphs.remove_if([](const Graph& g) { return g.owner.expired(); });
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
    return run(input);
  }
  Graph& g = *found;
  g.lastUse = ++useClock;
  if (g.failed) return run(input);
  std::vector<const void*> weights = weightAddresses(model);
  if (!g.graph || g.weights != weights) {
    try {
      capture(g, input, run);
      g.weights = weightAddresses(model);
      if (g.weights != weights) throw std::runtime_error("the weights moved while the forward was captured");
    } catch (const std::exception&) {
      // Not capturable (or the capture failed): this call and the next of its kind run as is.
      g.graph.reset();
      g.input = at::Tensor();
      g.outputs.clear();
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
  return static_cast<size_t>(
      std::count_if(graphs.begin(), graphs.end(), [](const Graph& g) { return g.graph != nullptr; }));
}

void clear() {
  std::lock_guard<std::mutex> lock(mutex);
  graphs.clear();
}

#else

bool built() { return false; }

NamedOutputs forward(torch::nn::Module&, const at::Tensor& input, int,
                     const std::function<NamedOutputs(const at::Tensor&)>& run) {
  return run(input);
}

size_t kept() { return 0; }

void clear() {}

#endif

}  // namespace fcn::cudaGraphs
