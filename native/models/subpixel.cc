#include "models/subpixel.h"

#include <ATen/Parallel.h>

#include <cstring>

#include "core/backends.h"

namespace fcn {

namespace {

struct Geometry {
  int64_t batch, outChannels, stride, padding, outH, outW, cellsH, cellsW;
};

/// Walks the output rows: for row (n, o, y) and every run of up to s pixels that come from
/// one cell (q, q') of the scores, calls copy(outOffset, scoresOffset, length).
/// Scores are channels-last [N, Hq, Wq, O*s*s]; the output is [N, O, outH, outW].
template <typename Copy>
void forEachRun(const Geometry& g, Copy&& copy) {
  int64_t channels = g.outChannels * g.stride * g.stride;
  at::parallel_for(0, g.batch * g.outChannels * g.outH, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t n = row / (g.outChannels * g.outH), o = (row / g.outH) % g.outChannels, y = row % g.outH;
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

/// The pixel shuffle and the crop as one copy out of the channels-last scores.
at::Tensor shuffleCrop(const at::Tensor& scores, const Geometry& g) {
  at::Tensor z = scores.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor out = at::empty({g.batch, g.outChannels, g.outH, g.outW}, z.options());
  const float* src = z.const_data_ptr<float>();
  float* dst = out.mutable_data_ptr<float>();
  forEachRun(g, [&](int64_t o, int64_t s, int64_t n) { std::memcpy(dst + o, src + s, n * sizeof(float)); });
  return out;
}

}  // namespace

bool subpixelFits(const torch::nn::detail::ConvNdOptions<2>& options, const at::Tensor& input,
                  const at::Tensor& weight) {
  auto k = options.kernel_size(), s = options.stride(), d = options.dilation(), op = options.output_padding();
  auto p = options.padding();
  auto* padding = std::get_if<torch::ExpandingArray<2>>(&p);
  bool needsGrad = at::GradMode::is_enabled() && (input.requires_grad() || weight.requires_grad());
  return backends::subpixelUpsampling && !needsGrad && input.dim() == 4 && input.device().is_cpu() &&
         input.scalar_type() == at::kFloat && padding != nullptr && s->at(0) == s->at(1) && s->at(0) >= 8 &&
         k->at(0) == 2 * s->at(0) && k->at(1) == 2 * s->at(1) && (*padding)->at(0) == (*padding)->at(1) &&
         (*padding)->at(0) <= s->at(0) && d->at(0) == 1 && d->at(1) == 1 && op->at(0) == 0 && op->at(1) == 0 &&
         options.groups() == 1 && std::holds_alternative<torch::enumtype::kZeros>(options.padding_mode());
}

at::Tensor subpixelTransposedConv(const at::Tensor& input, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, int64_t stride, int64_t padding) {
  int64_t inChannels = weight.size(0), outChannels = weight.size(1), s = stride;
  // kernel[(o, r, r'), c, di, dj] = weight[c, o, r + s (1 - di), r' + s (1 - dj)]
  at::Tensor kernel = weight.reshape({inChannels, outChannels, 2, s, 2, s})
                          .flip({2, 4})
                          .permute({1, 3, 5, 0, 2, 4})
                          .reshape({outChannels * s * s, inChannels, 2, 2});
  std::optional<at::Tensor> scoreBias;
  if (bias && bias->defined()) scoreBias = bias->repeat_interleave(s * s);
  at::Tensor padded = at::constant_pad_nd(input, {1, 1, 1, 1}, 0).contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor scores = at::conv2d(padded, kernel, scoreBias);
  int64_t h = input.size(2), w = input.size(3);
  Geometry g{input.size(0), outChannels, s, padding, (h + 1) * s - 2 * padding, (w + 1) * s - 2 * padding,
             h + 1,         w + 1};
  if (g.outH <= 0 || g.outW <= 0) throw std::invalid_argument("transposed convolution: the output would be empty");
  return shuffleCrop(scores, g);
}

}  // namespace fcn
