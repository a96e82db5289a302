#include "core/channel_argmax.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <limits>

namespace fcn {

at::Tensor channelArgmax(const at::Tensor& scores) {
  if (scores.dim() != 4 || !scores.device().is_cpu() || scores.scalar_type() != at::kFloat || !scores.is_contiguous() ||
      scores.numel() == 0 || scores.size(1) > std::numeric_limits<int32_t>::max()) {
    return scores.argmax(1);
  }
  const int64_t images = scores.size(0), channels = scores.size(1), plane = scores.size(2) * scores.size(3);
  at::Tensor labels = at::empty({images, scores.size(2), scores.size(3)}, scores.options().dtype(at::kLong));
  const float* src = scores.const_data_ptr<float>();
  int64_t* dst = labels.mutable_data_ptr<int64_t>();
  // A block of pixels: its running maxima and their channels stay in L1 while every channel
  // of the block streams past once.
  constexpr int64_t kBlock = 1024;
  const int64_t blocksPerImage = (plane + kBlock - 1) / kBlock;
  at::parallel_for(0, images * blocksPerImage, 1, [&](int64_t begin, int64_t end) {
    std::array<float, kBlock> best;
    std::array<int32_t, kBlock> channel;
    for (int64_t block = begin; block < end; ++block) {
      const int64_t image = block / blocksPerImage, start = (block % blocksPerImage) * kBlock;
      const int64_t length = std::min(kBlock, plane - start);
      const float* first = src + image * channels * plane + start;
      std::copy(first, first + length, best.begin());
      std::fill(channel.begin(), channel.begin() + length, 0);
      for (int64_t c = 1; c < channels; ++c) {
        const float* row = first + c * plane;
        const auto index = static_cast<int32_t>(c);
        for (int64_t i = 0; i < length; ++i) {
          const float v = row[i], b = best[i];
          // A larger value, or the first NaN (at::argmax ranks NaN above every number).
          const bool take = v > b || (v != v && b == b);
          best[i] = take ? v : b;
          channel[i] = take ? index : channel[i];
        }
      }
      std::copy(channel.begin(), channel.begin() + length, dst + image * plane + start);
    }
  });
  return labels;
}

}  // namespace fcn
