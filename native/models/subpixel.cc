#include "models/subpixel.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <list>
#include <mutex>
#include <string_view>
#include <vector>

#include "core/backends.h"
#include "core/channel_argmax.h"
#include "core/registered_ops.h"

namespace fcn {

namespace {

struct Geometry {
  int64_t batch, outChannels, stride, padding, outH, outW, cellsH, cellsW;
};

/// Walks the output rows: for row (n, o, y) of an output [N, O, outH, outW] (perChannel), or
/// row (n, y) of a channels-last one, and every run of up to s pixels that come from one cell
/// (q, q') of the scores, calls copy(outOffset, scoresOffset, length). Scores are rows (n, q,
/// q') of columns (o, r, r'), i.e. channels-last [N, Hq, Wq, O*s*s]. Channels-last, outOffset
/// is the run's first pixel (its O channels from outOffset * O on) and scoresOffset that of
/// channel 0 (channel o's from scoresOffset + o s s on).
template <typename Copy>
void forEachRun(const Geometry& g, bool perChannel, Copy&& copy) {
  int64_t channels = g.outChannels * g.stride * g.stride, planes = perChannel ? g.outChannels : 1;
  at::parallel_for(0, g.batch * planes * g.outH, perChannel ? 16 : 4, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t n = row / (planes * g.outH), o = (row / g.outH) % planes, y = row % g.outH;
      int64_t q = (y + g.padding) / g.stride, r = (y + g.padding) % g.stride;
      int64_t scoresRow = ((n * g.cellsH + q) * g.cellsW) * channels + (o * g.stride + r) * g.stride;
      for (int64_t x = 0; x < g.outW;) {
        int64_t column = x + g.padding, qq = column / g.stride, rr = column % g.stride;
        int64_t run = std::min(g.stride - rr, g.outW - x);
        copy(row * g.outW + x, scoresRow + qq * channels + rr, run);
        x += run;
      }
    }
  });
}

/// The pixel shuffle and the crop as one copy out of the scores [cells, O*s*s].
at::Tensor shuffleCrop(const at::Tensor& scores, const Geometry& g) {
  at::Tensor z = scores.contiguous();
  at::Tensor out = at::empty({g.batch, g.outChannels, g.outH, g.outW}, z.options());
  const float* src = z.const_data_ptr<float>();
  float* dst = out.mutable_data_ptr<float>();
  forEachRun(g, /*perChannel=*/true,
             [&](int64_t o, int64_t s, int64_t n) { std::memcpy(dst + o, src + s, n * sizeof(float)); });
  return out;
}

/// The shuffle and crop for training: the output channels-last, as the loss reads it fastest.
at::Tensor shuffleCropChannelsLast(const at::Tensor& scores, const Geometry& g) {
  at::Tensor z = scores.contiguous();
  at::Tensor out =
      at::empty({g.batch, g.outChannels, g.outH, g.outW}, z.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* src = z.const_data_ptr<float>();
  float* dst = out.mutable_data_ptr<float>();
  int64_t channels = g.outChannels, plane = g.stride * g.stride;
  forEachRun(g, /*perChannel=*/false, [&](int64_t p, int64_t s, int64_t n) {
    for (int64_t o = 0; o < channels; ++o) {
      for (int64_t j = 0; j < n; ++j) dst[(p + j) * channels + o] = src[s + o * plane + j];
    }
  });
  return out;
}

/// Its gradient: each output pixel's back in its place among the scores [cells, O*s*s]
/// (every score feeds one output pixel at most; those the crop drops get zero). The crop
/// (padding <= stride) drops scores of the border cells only: those are zeroed first, the
/// others are all written once.
at::Tensor unshuffle(const at::Tensor& grad, const Geometry& g) {
  at::Tensor z = grad.contiguous(at::MemoryFormat::ChannelsLast);
  int64_t channels = g.outChannels, plane = g.stride * g.stride, cellScores = channels * plane;
  at::Tensor scores = at::empty({g.batch * g.cellsH * g.cellsW, cellScores}, z.options());
  const float* src = z.const_data_ptr<float>();
  float* dst = scores.mutable_data_ptr<float>();
  at::parallel_for(0, scores.size(0), 16, [&](int64_t begin, int64_t end) {
    for (int64_t cell = begin; cell < end; ++cell) {
      int64_t q = (cell / g.cellsW) % g.cellsH, qq = cell % g.cellsW;
      if (q == 0 || q == g.cellsH - 1 || qq == 0 || qq == g.cellsW - 1) {
        std::memset(dst + cell * cellScores, 0, cellScores * sizeof(float));
      }
    }
  });
  forEachRun(g, /*perChannel=*/false, [&](int64_t p, int64_t s, int64_t n) {
    for (int64_t o = 0; o < channels; ++o) {
      for (int64_t j = 0; j < n; ++j) dst[s + o * plane + j] = src[(p + j) * channels + o];
    }
  });
  return scores;
}

/// The training shuffle for autograd, so that training takes the sub-pixel path too.
struct ShuffleCrop : torch::autograd::Function<ShuffleCrop> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& scores, const Geometry& g) {
    ctx->saved_data["geometry"] =
        std::vector<int64_t>{g.batch, g.outChannels, g.stride, g.padding, g.outH, g.outW, g.cellsH, g.cellsW};
    return shuffleCropChannelsLast(scores, g);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor()};
    // The copy back is not differentiable itself: a graph of this backward would lack it.
    if (at::GradMode::is_enabled()) {
      throw std::logic_error(
          "a second derivative through the sub-pixel transposed convolution is not supported; turn "
          "torch.backends.subpixelUpsampling off for it");
    }
    auto v = ctx->saved_data["geometry"].toIntVector();
    return {unshuffle(grads[0], Geometry{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}), at::Tensor()};
  }
};

/// The kernel matrix of a weight [C, O, 2s, 2s]: rows (di, dj, c), columns (o, r, r'), with
/// kernel[(di, dj, c), (o, r, r')] = weight[c, o, r + s (1 - di), r' + s (1 - dj)].
at::Tensor kernelMatrix(const at::Tensor& weight, int64_t s) {
  int64_t inChannels = weight.size(0), outChannels = weight.size(1);
  return weight.reshape({inChannels, outChannels, 2, s, 2, s})
      .flip({2, 4})
      .permute({2, 4, 0, 1, 3, 5})
      .reshape({4 * inChannels, outChannels * s * s});
}

using Scalars = c10::List<std::optional<at::Scalar>>;
/// mkldnn::_linear_pointwise(X, W, B?, attr, scalars, algorithm): X W^T + B by oneDNN, with W
/// packed by mkldnn::_reorder_linear_weight(W, batch_size?). Where this libtorch has them
/// (builds without oneDNN do not), the product takes them: on a 2-core AMD EPYC, MKL's sgemm
/// (its AVX2 path there) took 6.0 ms for the FCN's batch of one, oneDNN's 1.9 ms.
using LinearFn = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, std::string_view,
                            Scalars, std::optional<std::string_view>);
using ReorderFn = at::Tensor(const at::Tensor&, std::optional<int64_t>);
struct LinearOps {
  std::optional<c10::TypedOperatorHandle<LinearFn>> linear;
  std::optional<c10::TypedOperatorHandle<ReorderFn>> reorder;
};

const LinearOps& linearOps() {
  static const LinearOps ops{findCpuOp<LinearFn>("mkldnn::_linear_pointwise", ""),
                             findCpuOp<ReorderFn>("mkldnn::_reorder_linear_weight", "")};
  return ops;
}

/// The product's right-hand side for a weight: packed for oneDNN's linear (the kernel matrix
/// transposed, [O*s*s, 4C], in oneDNN's layout) or, without it, the kernel matrix itself.
at::Tensor productKernel(const at::Tensor& weight, int64_t s) {
  c10::InferenceMode normalTensors(false);  // kept for later calls, inside inference mode or not
  at::NoGradGuard noGrad;
  at::Tensor kernel = kernelMatrix(weight, s);
  const LinearOps& ops = linearOps();
  if (ops.linear && ops.reorder) return ops.reorder->call(kernel.t().contiguous(), std::nullopt);
  return kernel;
}

/// Product kernels kept between forwards (rearranging the FCN's 64x64 kernels is a 7 MB
/// copy, ~2.6 ms here; packing it another): one per weight, valid while that weight lives at
/// the same address with the same version (an optimizer step, a load or any in-place change
/// bumps it). The weight is held weakly; entries of freed weights are dropped at the next
/// look-up.
struct KeptKernel {
  c10::weak_intrusive_ptr<c10::TensorImpl> weight;
  const void* data;
  int64_t version, stride;
  std::vector<int64_t> sizes;
  at::Tensor kernel;
};
constexpr size_t kKeptKernels = 4;
std::mutex keptMutex;
std::list<KeptKernel> kept;  // guarded by keptMutex, most recent first

at::Tensor kernelFor(const at::Tensor& weight, int64_t s) {
  if (weight.is_inference()) return kernelMatrix(weight, s);  // changes it has no version for: not packed each call
  std::lock_guard<std::mutex> lock(keptMutex);
  kept.remove_if([](const KeptKernel& k) { return k.weight.expired(); });
  for (auto it = kept.begin(); it != kept.end(); ++it) {
    if (it->weight._unsafe_get_target() != weight.unsafeGetTensorImpl()) continue;
    if (it->data == weight.const_data_ptr() && it->version == weight._version() && it->stride == s &&
        weight.sizes() == it->sizes) {
      kept.splice(kept.begin(), kept, it);
      return kept.front().kernel;
    }
    kept.erase(it);
    break;
  }
  at::Tensor kernel = productKernel(weight, s);
  kept.push_front(KeptKernel{c10::weak_intrusive_ptr<c10::TensorImpl>(weight.getIntrusivePtr()),
                             weight.const_data_ptr(), weight._version(), s, weight.sizes().vec(), kernel});
  if (kept.size() > kKeptKernels) kept.pop_back();
  return kernel;
}

/// The bias of each output channel repeated over its s*s columns (o, r, r').
std::optional<at::Tensor> columnBias(const std::optional<at::Tensor>& bias, int64_t s) {
  if (!bias || !bias->defined()) return std::nullopt;
  return bias->repeat_interleave(s * s);
}

/// taps [cells, 4C] times the kernel matrix (packed for oneDNN by productKernel, without
/// gradient; or plain, by at::addmm, with it), plus the columns' bias.
at::Tensor product(const at::Tensor& taps, const at::Tensor& kernel, const std::optional<at::Tensor>& bias) {
  if (kernel.is_mkldnn()) return linearOps().linear->call(taps, kernel, bias, "none", Scalars(), std::nullopt);
  return bias ? at::addmm(*bias, taps, kernel) : at::mm(taps, kernel);
}

/// The training product taps [cells, 4C] x kernel [4C, N] + bias [N] with its gradient, all
/// three products by oneDNN's linear on unpacked operands (a weight changes every step): on
/// a 2-core AMD EPYC (AVX-512), at batch 4 and 320x480, MKL's sgemm took 18 ms forward and
/// 19 + 26 ms for the two gradients, oneDNN 10, 10 and 9 (`python`, torch 2.13, tcmalloc).
struct TrainingProduct : torch::autograd::Function<TrainingProduct> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& taps, const at::Tensor& kernel,
                            const std::optional<at::Tensor>& bias) {
    ctx->save_for_backward({taps, kernel});
    ctx->saved_data["bias"] = bias.has_value();
    // linear(X, W, B) = X W^T + B: W is the kernel's transpose, a view.
    return linearOps().linear->call(taps, kernel.t(), bias, "none", Scalars(), std::nullopt);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    if (at::GradMode::is_enabled()) {
      throw std::logic_error(
          "a second derivative through the sub-pixel transposed convolution is not supported; turn "
          "torch.backends.subpixelUpsampling off for it");
    }
    const at::Tensor grad = grads[0].contiguous();
    auto saved = ctx->get_saved_variables();
    const at::Tensor &taps = saved[0], &kernel = saved[1];
    const auto& linear = *linearOps().linear;
    at::Tensor tapsGrad, kernelGrad, biasGrad;
    // d taps = grad kernel^T = linear(grad, kernel); d kernel = taps^T grad = linear(taps^T, grad^T).
    if (ctx->needs_input_grad(0)) tapsGrad = linear.call(grad, kernel, std::nullopt, "none", Scalars(), std::nullopt);
    if (ctx->needs_input_grad(1)) {
      kernelGrad = linear.call(taps.t().contiguous(), grad.t(), std::nullopt, "none", Scalars(), std::nullopt);
    }
    // An absent bias still takes a place among the gradients, but has no edge to ask about.
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) biasGrad = grad.sum(0);
    return {tapsGrad, kernelGrad, biasGrad};
  }
};

/// The geometry of the upsampling of input by a weight [C, O, 2s, 2s], stride s.
Geometry geometryOf(const at::Tensor& input, const at::Tensor& weight, int64_t s, int64_t padding) {
  int64_t batch = input.size(0), h = input.size(2), w = input.size(3);
  Geometry g{batch, weight.size(1), s, padding, (h + 1) * s - 2 * padding, (w + 1) * s - 2 * padding, h + 1, w + 1};
  if (g.outH <= 0 || g.outW <= 0) throw std::invalid_argument("transposed convolution: the output would be empty");
  return g;
}

/// The taps [cells, 4C] of input for the 2x2 convolution.
at::Tensor tapsOf(const at::Tensor& input) {
  int64_t batch = input.size(0), h = input.size(2), w = input.size(3), inChannels = input.size(1);
  // The 2x2 convolution as one matrix product whose rows are the cells (n, q, q') and whose
  // columns are the channels (o, r, r'): exactly the channels-last scores that the shuffle
  // reads, with no layout change after it. (As a convolution, a batch of one with few input
  // channels left oneDNN for im2col into a channels-first output, then a copy back.)
  // taps[(n, q, q'), (di, dj, c)] = padded[n, c, q + di, q' + dj]
  at::Tensor padded = at::constant_pad_nd(input, {1, 1, 1, 1}, 0).contiguous(at::MemoryFormat::ChannelsLast);
  int64_t sN = padded.stride(0), sH = padded.stride(2), sW = padded.stride(3);
  return padded.as_strided({batch, h + 1, w + 1, 2, 2, inChannels}, {sN, sH, sW, sH, sW, 1})
      .reshape({batch * (h + 1) * (w + 1), 4 * inChannels});
}

}  // namespace

bool subpixelFits(const torch::nn::detail::ConvNdOptions<2>& options, const at::Tensor& input, const at::Tensor& weight,
                  const at::Tensor& bias) {
  auto k = options.kernel_size(), s = options.stride(), d = options.dilation(), op = options.output_padding();
  auto p = options.padding();
  auto* padding = std::get_if<torch::ExpandingArray<2>>(&p);
  // (Under CPU autocast the caller gives a float32 input and runs the product outside autocast.)
  auto cpuFloat = [](const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat; };
  return backends::subpixelUpsampling && input.dim() == 4 && cpuFloat(input) && cpuFloat(weight) &&
         (!bias.defined() || cpuFloat(bias)) && padding != nullptr && s->at(0) == s->at(1) && s->at(0) >= 8 &&
         k->at(0) == 2 * s->at(0) && k->at(1) == 2 * s->at(1) && (*padding)->at(0) == (*padding)->at(1) &&
         (*padding)->at(0) <= s->at(0) && d->at(0) == 1 && d->at(1) == 1 && op->at(0) == 0 && op->at(1) == 0 &&
         options.groups() == 1 && std::holds_alternative<torch::enumtype::kZeros>(options.padding_mode());
}

at::Tensor subpixelTransposedConv(const at::Tensor& input, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, int64_t stride, int64_t padding) {
  int64_t s = stride;
  Geometry g = geometryOf(input, weight, s, padding);
  at::Tensor taps = tapsOf(input);
  bool needsGrad = at::GradMode::is_enabled() && (input.requires_grad() || weight.requires_grad() ||
                                                  (bias && bias->defined() && bias->requires_grad()));
  if (!needsGrad) return shuffleCrop(product(taps, kernelFor(weight, s), columnBias(bias, s)), g);
  // Training: the kernel matrix made anew with its gradient, unpacked.
  at::Tensor kernel = kernelMatrix(weight, s);
  std::optional<at::Tensor> biases = columnBias(bias, s);
  at::Tensor scores = linearOps().linear ? TrainingProduct::apply(taps, kernel, biases) : product(taps, kernel, biases);
  return ShuffleCrop::apply(scores, g);
}

at::Tensor subpixelLabels(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          int64_t stride, int64_t padding) {
  at::NoGradGuard noGrad;
  Geometry g = geometryOf(input, weight, stride, padding);
  at::Tensor scores = product(tapsOf(input), kernelFor(weight, stride), columnBias(bias, stride)).contiguous();
  at::Tensor labels = at::empty({g.batch, g.outH, g.outW}, scores.options().dtype(at::kLong));
  const float* src = scores.const_data_ptr<float>();
  int64_t* dst = labels.mutable_data_ptr<int64_t>();
  const int64_t channels = g.outChannels, s = g.stride, plane = s * s;
  const int64_t cellsPerImage = g.cellsH * g.cellsW;
  // A cell's scores are one block [O, s, s]: blockArgmax walks the rows of its pixels that the
  // crop keeps, whose columns then take their labels.
  at::parallel_for(0, g.batch * cellsPerImage, 1, [&](int64_t begin, int64_t end) {
    std::array<int32_t, kArgmaxBlock> channel;
    for (int64_t cell = begin; cell < end; ++cell) {
      const int64_t n = cell / cellsPerImage, q = (cell / g.cellsW) % g.cellsH, qq = cell % g.cellsW;
      const int64_t top = q * s - g.padding, left = qq * s - g.padding;  // the cell's first pixel
      const int64_t firstRow = std::max<int64_t>(0, -top), endRow = std::min(s, g.outH - top);
      const int64_t firstColumn = std::max<int64_t>(0, -left), endColumn = std::min(s, g.outW - left);
      // Blocks of whole rows (parts of one row where a row is longer than a block).
      const int64_t rowsPerBlock = std::max<int64_t>(1, kArgmaxBlock / s);
      for (int64_t row = firstRow; row < endRow; row += rowsPerBlock) {
        const int64_t rows = std::min(rowsPerBlock, endRow - row);
        for (int64_t from = 0; from < s; from += kArgmaxBlock) {
          const int64_t width = std::min(kArgmaxBlock, s - from);  // s when rows > 1
          blockArgmax(src + cell * channels * plane + row * s + from, channels, plane, rows * width, channel.data());
          for (int64_t k = 0; k < rows; ++k) {
            int64_t* out = dst + (n * g.outH + top + row + k) * g.outW + left;
            for (int64_t column = std::max(from, firstColumn); column < std::min(from + width, endColumn); ++column) {
              out[column] = channel[k * width + column - from];
            }
          }
        }
      }
    }
  });
  return labels;
}

}  // namespace fcn
