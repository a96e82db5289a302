// The chapter's bilinear kernel, the weight that makes a transposed convolution upsample
// bilinearly.
#include "models/init.h"

namespace fcn {

at::Tensor bilinearKernel(int64_t inChannels, int64_t outChannels, int64_t kernelSize) {
  if (inChannels < 1 || outChannels < 1 || kernelSize < 1) {
    throw std::invalid_argument("bilinearKernel: channels and kernel size must be >= 1");
  }
  if (inChannels != outChannels && inChannels != 1 && outChannels != 1) {
    throw std::invalid_argument("bilinearKernel: inChannels (" + std::to_string(inChannels) + ") and outChannels (" +
                                std::to_string(outChannels) +
                                ") must be equal or one of them 1, as the chapter fills the (i, i) planes");
  }
  int64_t factor = (kernelSize + 1) / 2;
  at::Tensor og0 = at::arange(kernelSize).reshape({-1, 1});
  at::Tensor og1 = at::arange(kernelSize).reshape({1, -1});
  // Odd kernels: integer centre (int64 arithmetic, then true division); even: centre - 0.5.
  at::Tensor filt;
  if (kernelSize % 2 == 1) {
    int64_t center = factor - 1;
    filt = (1 - at::abs(og0 - center) / factor) * (1 - at::abs(og1 - center) / factor);
  } else {
    double center = static_cast<double>(factor) - 0.5;
    filt = (1 - at::abs(og0 - center) / factor) * (1 - at::abs(og1 - center) / factor);
  }
  at::Tensor weight = at::zeros({inChannels, outChannels, kernelSize, kernelSize});
  int64_t n = std::max(inChannels, outChannels);
  for (int64_t i = 0; i < n; ++i) {
    weight[inChannels == 1 ? 0 : i][outChannels == 1 ? 0 : i].copy_(filt);
  }
  return weight;
}

}  // namespace fcn
