#include "voc_data.h"

#include <stdexcept>
#include <string>

namespace fcn::voc {

const std::array<std::array<uint8_t, 3>, 21> kColormap = {{
    {0, 0, 0},       {128, 0, 0},     {0, 128, 0}, {128, 128, 0}, {0, 0, 128},   {128, 0, 128}, {0, 128, 128},
    {128, 128, 128}, {64, 0, 0},      {192, 0, 0}, {64, 128, 0},  {192, 128, 0}, {64, 0, 128},  {192, 0, 128},
    {64, 128, 128},  {192, 128, 128}, {0, 64, 0},  {128, 64, 0},  {0, 192, 0},   {128, 192, 0}, {0, 64, 128},
}};

namespace {
constexpr uint32_t pack(uint8_t r, uint8_t g, uint8_t b) { return (uint32_t{r} << 16) | (uint32_t{g} << 8) | b; }
}  // namespace

at::Tensor labelIndices(const at::Tensor& rgb) {
  if (rgb.scalar_type() != at::kByte || rgb.dim() != 3 || rgb.size(2) != 3) {
    throw std::invalid_argument("a label image must be uint8 [H, W, 3], got [" + c10::Join(", ", rgb.sizes()) + "]");
  }
  at::Tensor src = rgb.contiguous();
  int64_t height = src.size(0), width = src.size(1);
  at::Tensor out = at::empty({height, width}, at::kByte);
  const uint8_t* p = src.data_ptr<uint8_t>();
  uint8_t* q = out.data_ptr<uint8_t>();
  // Labels are large flat regions: remember the last colour and only search on a change.
  uint32_t lastColour = pack(0, 0, 0);
  uint8_t lastClass = 0;
  for (int64_t i = 0; i < height * width; ++i, p += 3) {
    uint32_t colour = pack(p[0], p[1], p[2]);
    if (colour != lastColour) {
      int found = -1;
      for (size_t c = 0; c < kColormap.size(); ++c) {
        if (colour == pack(kColormap[c][0], kColormap[c][1], kColormap[c][2])) found = static_cast<int>(c);
      }
      if (found < 0 && colour == pack(kVoidColour[0], kVoidColour[1], kVoidColour[2])) found = kIgnore;
      if (found < 0) {
        throw std::invalid_argument("colour (" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ", " +
                                    std::to_string(p[2]) + ") at row " + std::to_string(i / width) + ", column " +
                                    std::to_string(i % width) + " is not in the VOC palette");
      }
      lastColour = colour;
      lastClass = static_cast<uint8_t>(found);
    }
    q[i] = lastClass;
  }
  return out;
}

std::pair<at::Tensor, at::Tensor> cropBatch(const std::vector<at::Tensor>& images,
                                            const std::vector<at::Tensor>& labels, const std::vector<Crop>& crops,
                                            int64_t cropH, int64_t cropW, const std::array<double, 3>& mean,
                                            const std::array<double, 3>& std) {
  if (images.size() != labels.size() || images.size() != crops.size() || images.empty()) {
    throw std::invalid_argument("cropBatch needs as many images, labels and crops, at least one");
  }
  auto batch = static_cast<int64_t>(images.size());
  at::Tensor X = at::empty({batch, 3, cropH, cropW}, at::kFloat);
  at::Tensor Y = at::empty({batch, cropH, cropW}, at::kLong);
  at::Tensor meanT = at::tensor({mean[0], mean[1], mean[2]}, at::kFloat).view({3, 1, 1});
  at::Tensor stdT = at::tensor({std[0], std[1], std[2]}, at::kFloat).view({3, 1, 1});
  for (int64_t b = 0; b < batch; ++b) {
    const at::Tensor& image = images[b];
    const at::Tensor& label = labels[b];
    const Crop& c = crops[b];
    if (image.dim() != 3 || image.size(2) != 3 || label.dim() != 2 || label.size(0) != image.size(0) ||
        label.size(1) != image.size(1)) {
      throw std::invalid_argument("sample " + std::to_string(b) + ": image [H, W, 3] and label [H, W] do not match");
    }
    if (c.top < 0 || c.left < 0 || c.top + cropH > image.size(0) || c.left + cropW > image.size(1)) {
      throw std::invalid_argument("sample " + std::to_string(b) + ": the crop window lies outside the image");
    }
    at::Tensor window = image.narrow(0, c.top, cropH).narrow(1, c.left, cropW).permute({2, 0, 1});
    // (x / 255 - mean) / std, as the chapter's ToTensor + Normalize compute it.
    X[b].copy_(window).div_(255).sub_(meanT).div_(stdT);
    Y[b].copy_(label.narrow(0, c.top, cropH).narrow(1, c.left, cropW));
  }
  return {X, Y};
}

}  // namespace fcn::voc
