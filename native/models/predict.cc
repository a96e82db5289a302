#include "models/predict.h"

#include <c10/core/DeviceGuard.h>

#include "core/channel_argmax.h"
#include "core/describe.h"
#include "models/run_model.h"

namespace fcn {

namespace {

/// Tile starts along a side: evenly spread, the first at 0 and the last at side - tile.
std::vector<int64_t> tileStarts(int64_t side, int64_t tile) {
  int64_t count = (side + tile - 1) / tile;
  if (count <= 1) return {0};
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < count; ++i) starts.push_back((i * (side - tile) + (count - 1) / 2) / (count - 1));
  return starts;
}

/// The mean logits of the tiles, then their argmax over classes: [N, H, W].
at::Tensor tiledArgmax(torch::nn::Module& model, const at::Tensor& images, int64_t tileH, int64_t tileW) {
  int64_t height = images.size(2), width = images.size(3);
  int64_t paddedH = std::max<int64_t>(height, 32), paddedW = std::max<int64_t>(width, 32);
  at::Tensor input = images;
  if (paddedH != height || paddedW != width) {
    input = at::constant_pad_nd(input, {0, paddedW - width, 0, paddedH - height}, 0);
  }
  int64_t th = std::min(tileH, paddedH / 32 * 32), tw = std::min(tileW, paddedW / 32 * 32);
  auto tileLogits = [&](int64_t top, int64_t left) {
    at::Tensor logits = runModel(model, input.narrow(2, top, th).narrow(3, left, tw));
    if (logits.dim() != 4 || logits.size(0) != images.size(0) || logits.size(2) != th || logits.size(3) != tw) {
      throw std::invalid_argument("predict: the model turned a " + std::to_string(th) + "x" + std::to_string(tw) +
                                  " tile into " + shapeString(logits) +
                                  "; an FCN must keep the tile's height and width");
    }
    return logits;
  };
  std::vector<int64_t> tops = tileStarts(paddedH, th), lefts = tileStarts(paddedW, tw);
  if (tops.size() == 1 && lefts.size() == 1) {
    // One tile, the whole (padded) image: its labels at once, without a mean's full-size copies
    // (and, where the model's kind can, without its full-size logits).
    at::Tensor labels = runModelLabels(model, input);  // th x tw: the padded input itself
    if (labels.dim() != 3 || labels.size(0) != images.size(0) || labels.size(1) != th || labels.size(2) != tw) {
      throw std::invalid_argument("predict: the model turned a " + std::to_string(th) + "x" + std::to_string(tw) +
                                  " image into labels " + shapeString(labels) +
                                  "; an FCN must keep the image's height and width");
    }
    return labels.narrow(1, 0, height).narrow(2, 0, width);
  }
  at::Tensor sum, count = at::zeros({1, 1, paddedH, paddedW}, input.options());
  for (int64_t top : tops) {
    for (int64_t left : lefts) {
      at::Tensor logits = tileLogits(top, left);
      if (!sum.defined()) sum = at::zeros({images.size(0), logits.size(1), paddedH, paddedW}, logits.options());
      sum.narrow(2, top, th).narrow(3, left, tw).add_(logits);
      count.narrow(2, top, th).narrow(3, left, tw).add_(1);
    }
  }
  at::Tensor mean = (sum / count).narrow(2, 0, height).narrow(3, 0, width);
  return channelArgmax(mean.contiguous());
}

/// x (float pixels in [0, 255]) scaled to [0, 1] and normalised per channel.
at::Tensor normalized(const at::Tensor& x, const Normalize& normalize) {
  auto channel = [&](const std::array<double, 3>& v) {
    return at::tensor(std::vector<double>(v.begin(), v.end()), x.options()).reshape({1, 3, 1, 1});
  };
  return (x / 255 - channel(normalize.mean)) / channel(normalize.std);
}

/// labels (made in inference mode) as a normal CPU tensor, usable outside it: a GPU's are
/// copied to the host once, a CPU's cloned.
at::Tensor onHost(const at::Tensor& labels) { return labels.is_cpu() ? labels.clone() : labels.to(at::kCPU); }

void checkImages(const at::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != 3 ||
      (images.scalar_type() != at::kByte && !at::isFloatingType(images.scalar_type()))) {
    throw std::invalid_argument("predict: images must be uint8 pixels or a float tensor [N, 3, H, W], got " +
                                describeTensor(images));
  }
}

}  // namespace

at::Tensor predictLabels(torch::nn::Module& model, const at::Tensor& images, int64_t tileH, int64_t tileW,
                         const Normalize& normalize) {
  checkImages(images);
  if (tileH < 32 || tileW < 32 || tileH % 32 != 0 || tileW % 32 != 0) {
    throw std::invalid_argument("predict: tile sides must be multiples of 32, got " + std::to_string(tileH) + "x" +
                                std::to_string(tileW));
  }
  model.train(false);
  c10::Device device = deviceOf(model);
  c10::DeviceGuard deviceGuard(device);
  at::Tensor labels;
  {
    c10::InferenceMode inference;
    at::Tensor x = images.to(device);
    if (images.scalar_type() == at::kByte) x = normalized(x.to(at::kFloat), normalize);
    labels = tiledArgmax(model, x, tileH, tileW);
  }
  return onHost(labels);
}

std::array<int64_t, 2> shorterSideSize(int64_t height, int64_t width, int64_t size) {
  int64_t shorter = std::min(height, width), longer = std::max(height, width);
  // torchvision's _compute_resized_output_size: int() truncates.
  auto newLonger = static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(longer) / shorter);
  return height <= width ? std::array<int64_t, 2>{size, newLonger} : std::array<int64_t, 2>{newLonger, size};
}

at::Tensor predictResized(torch::nn::Module& model, const at::Tensor& images, const ResizeNormalize& transforms) {
  checkImages(images);
  bool pixels = images.scalar_type() == at::kByte;
  if (images.size(2) < 1 || images.size(3) < 1 || transforms.resizeSize < 1) {
    throw std::invalid_argument("predict: empty images " + shapeString(images));
  }
  model.train(false);
  c10::Device device = deviceOf(model);
  c10::DeviceGuard deviceGuard(device);
  int64_t height = images.size(2), width = images.size(3);
  at::Tensor labels;
  {
    c10::InferenceMode inference;
    at::Tensor x = images.to(device).to(at::kFloat);
    auto size = shorterSideSize(height, width, transforms.resizeSize);
    if (size[0] != height || size[1] != width) {
      // torchvision resizes a uint8 image in float, then rounds it back to uint8.
      x = at::_upsample_bilinear2d_aa(x, {size[0], size[1]}, /*align_corners=*/false);
      if (pixels) x = x.round().clamp(0, 255);
    }
    if (pixels) x = normalized(x, transforms);
    at::Tensor logits = runModel(model, x);
    if (logits.dim() != 4 || logits.size(0) != images.size(0)) {
      throw std::invalid_argument("predict: the model turned images " + shapeString(x) + " into " +
                                  shapeString(logits) + "; expected logits [N, classes, h, w]");
    }
    labels = channelArgmax(at::upsample_bilinear2d(logits, {height, width}, /*align_corners=*/false));
  }
  return onHost(labels);
}

}  // namespace fcn
