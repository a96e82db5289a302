// Prediction: the model's logits over an image of any size, from tiles whose sides are
// multiples of 32 (the FCN's stride) that cover it, with overlapping logits averaged,
// then the argmax over classes. One tile of the image's own size is the chapter's case.
#pragma once

#include <torch/torch.h>

namespace fcn {

/// Class ids [N, H, W] (int64, CPU) for normalised images [N, 3, H, W], with model in eval
/// mode (it stays in it); tiles are at most
/// tileH x tileW (multiples of 32) and sides under 32 are zero-padded (the mean colour).
at::Tensor predictLabels(torch::nn::Module& model, const at::Tensor& images, int64_t tileH, int64_t tileW);

}  // namespace fcn
