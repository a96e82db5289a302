// Pascal VOC segmentation data in tensors: colour labels to class indices, and random-crop
// batches normalised with ImageNet statistics. Pure C++ (no Node-API) for the native tests.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <vector>

namespace fcn::voc {

/// The 21 class colours of VOC2012, index = class id.
extern const std::array<std::array<uint8_t, 3>, 21> kColormap;
/// The colour VOC draws object boundaries with (224, 224, 192), read as class kIgnore.
constexpr std::array<uint8_t, 3> kVoidColour = {224, 224, 192};
constexpr uint8_t kIgnore = 255;

/// Class ids [H, W] (uint8) of an RGB label image [H, W, 3] (uint8). A colour outside the
/// palette throws std::invalid_argument naming the colour and its first pixel.
at::Tensor labelIndices(const at::Tensor& rgb);

/// Class ids [H, W] (uint8) of an 8-bit indexed PNG: `scanlines` is its inflated image data
/// (uint8, per row a PNG filter-type byte then `width` palette indices, rows top to bottom),
/// `palette` its PLTE colours (uint8 [P, 3]). Rows are unfiltered as the PNG spec says, then
/// each index is mapped through its colour, so the result equals labelIndices() of the
/// decoded RGB image. A bad filter type, an index past the palette or a colour outside the
/// VOC palette throws std::invalid_argument naming the row and column.
at::Tensor paletteLabelIndices(const at::Tensor& scanlines, int64_t height, int64_t width, const at::Tensor& palette);

/// One crop of a sample: the top-left corner of a [cropH, cropW] window, whether the window
/// is mirrored left to right, and the size [height, width] the image is resized to first
/// (0: its own): bilinearly for the image, to the nearest pixel centre for the labels, as
/// PyTorch's interpolate does in modes 'bilinear' (align_corners=False) and 'nearest-exact'.
struct Crop {
  int64_t top, left;
  bool flip = false;
  int64_t height = 0, width = 0;
};

/// X float32 [B, 3, cropH, cropW] (pixel / 255, then (x - mean) / std per channel) and
/// Y int64 [B, cropH, cropW] from images [H, W, 3] uint8 and labels [H, W] (uint8 or int32).
/// An image (resized) smaller than the crop is padded at its bottom and right, as
/// torchvision's references pad: pixels 0 (before normalisation) labelled `ignore`; the window
/// then lies inside [max(H, cropH), max(W, cropW)].
std::pair<at::Tensor, at::Tensor> cropBatch(const std::vector<at::Tensor>& images,
                                            const std::vector<at::Tensor>& labels, const std::vector<Crop>& crops,
                                            int64_t cropH, int64_t cropW, const std::array<double, 3>& mean,
                                            const std::array<double, 3>& std, int64_t ignore = kIgnore);

}  // namespace fcn::voc
