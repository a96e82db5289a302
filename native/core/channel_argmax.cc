#include "core/channel_argmax.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <stdexcept>

namespace fcn {

void blockArgmax(const float* first, int64_t channels, int64_t channelStride, int64_t length, int32_t* channel) {
  // The block's running maxima and their channels stay in L1 while every channel of the block
  // streams past once.
  std::array<float, kArgmaxBlock> best;
  std::array<int32_t, kArgmaxBlock> index;
  std::copy(first, first + length, best.begin());
  std::fill(index.begin(), index.begin() + length, 0);
  for (int64_t c = 1; c < channels; ++c) {
    const float* row = first + c * channelStride;
    const auto cIndex = static_cast<int32_t>(c);
    for (int64_t i = 0; i < length; ++i) {
      const float v = row[i], b = best[i];
      // A larger value, or the first NaN (at::argmax ranks NaN above every number). Bitwise,
      // not ||/&&: their short-circuit is control flow, which kept GCC from vectorizing this.
      const bool take = (v > b) | ((v != v) & (b == b));
      best[i] = take ? v : b;
      index[i] = take ? cIndex : index[i];
    }
  }
  std::copy(index.begin(), index.begin() + length, channel);
}

at::Tensor channelArgmax(const at::Tensor& scores) {
  if (scores.dim() != 4 || !scores.device().is_cpu() || scores.scalar_type() != at::kFloat || !scores.is_contiguous() ||
      scores.numel() == 0 || scores.size(1) > std::numeric_limits<int32_t>::max()) {
    return scores.argmax(1);
  }
  const int64_t images = scores.size(0), channels = scores.size(1), plane = scores.size(2) * scores.size(3);
  at::Tensor labels = at::empty({images, scores.size(2), scores.size(3)}, scores.options().dtype(at::kLong));
  const float* src = scores.const_data_ptr<float>();
  int64_t* dst = labels.mutable_data_ptr<int64_t>();
  const int64_t blocksPerImage = (plane + kArgmaxBlock - 1) / kArgmaxBlock;
  at::parallel_for(0, images * blocksPerImage, 1, [&](int64_t begin, int64_t end) {
    std::array<int32_t, kArgmaxBlock> channel;
    for (int64_t block = begin; block < end; ++block) {
      const int64_t image = block / blocksPerImage, start = (block % blocksPerImage) * kArgmaxBlock;
      const int64_t length = std::min(kArgmaxBlock, plane - start);
      blockArgmax(src + image * channels * plane + start, channels, plane, length, channel.data());
      std::copy(channel.begin(), channel.begin() + length, dst + image * plane + start);
    }
  });
  return labels;
}

namespace {

/// Whether a pixel's scores (`channels` of them, `stride` apart) have their argmax at label.
bool labelIsArgmax(const float* score, int64_t channels, int64_t stride, int64_t label) {
  const float v = score[label * stride];
  if (v != v) {  // NaN: the argmax is the first NaN
    for (int64_t c = 0; c < label; ++c) {
      if (score[c * stride] != score[c * stride]) return false;
    }
    return true;
  }
  // Above every score before the label, not below any after it. Comparisons with a NaN are
  // false, so a NaN anywhere else makes the pixel wrong, as it must.
  bool wrong = false;
  for (int64_t c = 0; c < label; ++c) wrong |= !(v > score[c * stride]);
  for (int64_t c = label + 1; c < channels; ++c) wrong |= !(v >= score[c * stride]);
  return !wrong;
}

}  // namespace

ArgmaxHits argmaxHits(const at::Tensor& scores, const at::Tensor& labels, int64_t ignoreIndex) {
  if (scores.dim() != 4 || labels.dim() != 3 || labels.scalar_type() != at::kLong || scores.size(0) != labels.size(0) ||
      scores.size(2) != labels.size(1) || scores.size(3) != labels.size(2)) {
    throw std::invalid_argument("argmaxHits: scores [N, C, H, W] and int64 labels [N, H, W] expected");
  }
  if (!scores.device().is_cpu() || scores.scalar_type() != at::kFloat || !labels.device().is_cpu()) {
    at::Tensor labelled = labels != ignoreIndex;
    return {((scores.argmax(1) == labels) & labelled).sum(), labelled.sum()};
  }
  const at::Tensor y = labels.contiguous();
  const int64_t images = scores.size(0), channels = scores.size(1), height = scores.size(2), width = scores.size(3);
  const int64_t sn = scores.stride(0), sc = scores.stride(1), sh = scores.stride(2), sw = scores.stride(3);
  const float* base = scores.const_data_ptr<float>();
  const int64_t* label = y.const_data_ptr<int64_t>();
  // Both counts in the one pass over the labels.
  std::atomic<int64_t> hits{0}, labelled{0};
  at::parallel_for(0, images * height, 1, [&](int64_t begin, int64_t end) {
    int64_t found = 0, counted = 0;
    for (int64_t row = begin; row < end; ++row) {
      const float* first = base + (row / height) * sn + (row % height) * sh;
      const int64_t* rowLabels = label + row * width;
      for (int64_t x = 0; x < width; ++x) {
        const int64_t l = rowLabels[x];
        if (l == ignoreIndex) continue;
        ++counted;
        if (l >= 0 && l < channels) found += labelIsArgmax(first + x * sw, channels, sc, l);
      }
    }
    hits += found;
    labelled += counted;
  });
  return {at::scalar_tensor(hits.load(), labels.options()), at::scalar_tensor(labelled.load(), labels.options())};
}

}  // namespace fcn
