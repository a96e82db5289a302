// Prediction: the model's logits over an image of any size, from tiles whose sides are
// multiples of 32 (the FCN's stride) that cover it, with overlapping logits averaged,
// then the argmax over classes. One tile of the image's own size is the chapter's case.
// torchvision's segmentation models instead take the whole image with their weights'
// preprocessing (shorter side resized, normalised), their logits resized back.
#pragma once

#include <torch/torch.h>

#include <array>

namespace fcn {

/// The normalisation of uint8 pixels: scaled to [0, 1], then (x - mean) / std per channel
/// (ImageNet's statistics by default, as the chapter's normalize_image).
struct Normalize {
  std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
};

/// Class ids [N, H, W] (int64, CPU) for images [N, 3, H, W]: uint8 pixels, normalised here
/// with `normalize`, or float images taken as normalised. The model runs in eval mode (it stays
/// in it); tiles are at most tileH x tileW (multiples of 32) and sides under 32 are
/// zero-padded (the mean colour).
at::Tensor predictLabels(torch::nn::Module& model, const at::Tensor& images, int64_t tileH, int64_t tileW,
                         const Normalize& normalize);

/// torchvision's SemanticSegmentation preprocessing (weights.transforms()): the shorter side
/// resized to resizeSize, the longer in proportion (bilinear, antialiased, as torchvision
/// resizes images), then normalised.
struct ResizeNormalize : Normalize {
  int64_t resizeSize = 520;
};

/// torchvision's output size for resizing the shorter side of an h x w image to size.
std::array<int64_t, 2> shorterSideSize(int64_t height, int64_t width, int64_t size);

/// Class ids [N, H, W] (int64, CPU) at the images' own size. uint8 pixels [N, 3, H, W] get
/// the whole preprocessing (resized and rounded back to uint8 as torchvision does, scaled to
/// [0, 1], normalised); float images are taken as normalised and only resized. The model runs
/// in eval mode (it stays in it) on its "out" logits, which are resized bilinearly to H x W.
at::Tensor predictResized(torch::nn::Module& model, const at::Tensor& images, const ResizeNormalize& transforms);

}  // namespace fcn
