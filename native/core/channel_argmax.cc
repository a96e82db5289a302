#include "core/channel_argmax.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <limits>

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
      // A larger value, or the first NaN (at::argmax ranks NaN above every number).
      const bool take = v > b || (v != v && b == b);
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

}  // namespace fcn
