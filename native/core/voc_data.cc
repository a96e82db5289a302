#include "core/voc_data.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace fcn::voc {

const std::array<std::array<uint8_t, 3>, 21> kColormap = {{
    {0, 0, 0},       {128, 0, 0},     {0, 128, 0}, {128, 128, 0}, {0, 0, 128},   {128, 0, 128}, {0, 128, 128},
    {128, 128, 128}, {64, 0, 0},      {192, 0, 0}, {64, 128, 0},  {192, 128, 0}, {64, 0, 128},  {192, 0, 128},
    {64, 128, 128},  {192, 128, 128}, {0, 64, 0},  {128, 64, 0},  {0, 192, 0},   {128, 192, 0}, {0, 64, 128},
}};

namespace {
constexpr uint32_t pack(uint8_t r, uint8_t g, uint8_t b) { return (uint32_t{r} << 16) | (uint32_t{g} << 8) | b; }

/// The class of a colour: 0..20, kIgnore for the boundary colour, -1 outside the VOC palette.
int classOf(uint32_t colour) {
  for (size_t c = 0; c < kColormap.size(); ++c) {
    if (colour == pack(kColormap[c][0], kColormap[c][1], kColormap[c][2])) return static_cast<int>(c);
  }
  return colour == pack(kVoidColour[0], kVoidColour[1], kVoidColour[2]) ? kIgnore : -1;
}

std::string notInPalette(const uint8_t* rgb, int64_t row, int64_t column) {
  return "colour (" + std::to_string(rgb[0]) + ", " + std::to_string(rgb[1]) + ", " + std::to_string(rgb[2]) +
         ") at row " + std::to_string(row) + ", column " + std::to_string(column) + " is not in the VOC palette";
}

/// PNG's Paeth predictor of a byte from its left (a), upper (b) and upper-left (c) neighbours.
uint8_t paeth(int a, int b, int c) {
  int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return static_cast<uint8_t>(a);
  return static_cast<uint8_t>(pb <= pc ? b : c);
}

/// Reverses one row's PNG filter (one byte per pixel) in place; `up` is the row above,
/// already unfiltered (nullptr for the first row, which the spec treats as zeros).
void unfilterRow(uint8_t filter, uint8_t* row, const uint8_t* up, int64_t width, int64_t rowIndex) {
  switch (filter) {
    case 0: return;
    case 1:
      for (int64_t x = 1; x < width; ++x) row[x] = static_cast<uint8_t>(row[x] + row[x - 1]);
      return;
    case 2:
      if (up)
        for (int64_t x = 0; x < width; ++x) row[x] = static_cast<uint8_t>(row[x] + up[x]);
      return;
    case 3:
      for (int64_t x = 0; x < width; ++x) {
        int left = x > 0 ? row[x - 1] : 0, above = up ? up[x] : 0;
        row[x] = static_cast<uint8_t>(row[x] + (left + above) / 2);
      }
      return;
    case 4:
      for (int64_t x = 0; x < width; ++x) {
        int left = x > 0 ? row[x - 1] : 0, above = up ? up[x] : 0, corner = up && x > 0 ? up[x - 1] : 0;
        row[x] = static_cast<uint8_t>(row[x] + paeth(left, above, corner));
      }
      return;
    default:
      throw std::invalid_argument("row " + std::to_string(rowIndex) + " has PNG filter type " + std::to_string(filter) +
                                  ", not one of 0-4");
  }
}
/// Fresh memory costs a page fault per 4 KiB on first touch (about 130 ms for one 59 MB batch
/// here, more than filling it), so batch buffers are recycled: a cached tensor is reused once
/// nothing but this cache refers to it or its storage. The cache keeps the last few.
at::Tensor recycledEmpty(at::IntArrayRef shape, at::ScalarType type) {
  static std::mutex mutex;
  static std::vector<at::Tensor> cache;
  std::lock_guard<std::mutex> lock(mutex);
  for (const at::Tensor& t : cache) {
    if (t.use_count() == 1 && t.storage().use_count() == 1 && t.sizes() == shape && t.scalar_type() == type) return t;
  }
  at::Tensor t = at::empty(shape, type);
  if (cache.size() >= 4) cache.erase(cache.begin());
  cache.push_back(t);
  return t;
}
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
      int found = classOf(colour);
      if (found < 0) throw std::invalid_argument(notInPalette(p, i / width, i % width));
      lastColour = colour;
      lastClass = static_cast<uint8_t>(found);
    }
    q[i] = lastClass;
  }
  return out;
}

at::Tensor paletteLabelIndices(const at::Tensor& scanlines, int64_t height, int64_t width, const at::Tensor& palette) {
  if (scanlines.scalar_type() != at::kByte || scanlines.dim() != 1 || palette.scalar_type() != at::kByte ||
      palette.dim() != 2 || palette.size(1) != 3 || palette.size(0) < 1 || palette.size(0) > 256) {
    throw std::invalid_argument("an indexed PNG needs uint8 image data [N] and a uint8 palette [1..256, 3]");
  }
  constexpr int64_t kMostSide = int64_t{1} << 31;  // PNG's own bound; keeps height * (width + 1) in range
  if (height < 1 || width < 1 || height >= kMostSide || width >= kMostSide ||
      scanlines.numel() != height * (width + 1)) {
    throw std::invalid_argument("the image data is " + std::to_string(scanlines.numel()) + " bytes, but " +
                                std::to_string(height) + " rows of " + std::to_string(width) + " pixels take " +
                                std::to_string(height * (width + 1)));
  }
  at::Tensor colours = palette.contiguous();
  const uint8_t* rgb = colours.data_ptr<uint8_t>();
  const int64_t paletteSize = colours.size(0);
  // Each index's class (or -1: a colour outside VOC's, -2: past the palette), found once.
  std::array<int, 256> classes;
  for (int64_t i = 0; i < 256; ++i) {
    classes[i] = i < paletteSize ? classOf(pack(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2])) : -2;
  }
  at::Tensor filtered = scanlines.contiguous();
  const uint8_t* in = filtered.data_ptr<uint8_t>();
  at::Tensor out = at::empty({height, width}, at::kByte);
  uint8_t* ids = out.data_ptr<uint8_t>();
  for (int64_t y = 0; y < height; ++y) {
    uint8_t* row = ids + y * width;
    std::memcpy(row, in + y * (width + 1) + 1, width);
    unfilterRow(in[y * (width + 1)], row, y > 0 ? row - width : nullptr, width, y);
  }
  // Only after all rows are unfiltered: each row is reconstructed from the indices above it.
  for (int64_t i = 0; i < height * width; ++i) {
    int found = classes[ids[i]];
    if (found == -2) {
      throw std::invalid_argument("palette index " + std::to_string(ids[i]) + " at row " + std::to_string(i / width) +
                                  ", column " + std::to_string(i % width) + " is past the palette's " +
                                  std::to_string(paletteSize) + " colours");
    }
    if (found < 0) throw std::invalid_argument(notInPalette(rgb + 3 * ids[i], i / width, i % width));
    ids[i] = static_cast<uint8_t>(found);
  }
  return out;
}

namespace {
/// Where output pixel `at` of a side resized from `from` to `to` pixels samples: bilinearly
/// between `low` and `high` with weight `frac` on `high`, and its nearest pixel centre.
struct Sample {
  int64_t low, high, nearest;
  float frac;
};

Sample sampleOf(int64_t at, int64_t from, int64_t to) {
  const double scale = static_cast<double>(from) / static_cast<double>(to);
  const double source = std::max(scale * (static_cast<double>(at) + 0.5) - 0.5, 0.0);
  const auto low = static_cast<int64_t>(source);
  // As PyTorch's nearest-exact index, in its float arithmetic, so that labels match it exactly.
  const float floatScale = static_cast<float>(from) / static_cast<float>(to);
  const auto centre = static_cast<float>((static_cast<double>(at) + 0.5) * floatScale);
  const int64_t nearest = std::min(static_cast<int64_t>(std::floor(centre)), from - 1);
  return {low, std::min(low + 1, from - 1), nearest, static_cast<float>(source - static_cast<double>(low))};
}

/// One sample's window into X (3 planes) and Y; rows and columns past the (resized) image are padding.
template <typename Id>
void cropOne(const at::Tensor& image, const at::Tensor& label, const Crop& crop, int64_t cropH, int64_t cropW,
             const std::array<std::array<float, 256>, 3>& table, const std::array<double, 3>& mean,
             const std::array<double, 3>& std, int64_t ignore, float* x, int64_t* y) {
  const int64_t height = image.size(0), width = image.size(1);
  const bool resized = crop.height > 0 && (crop.height != height || crop.width != width);
  const int64_t shownH = resized ? crop.height : height, shownW = resized ? crop.width : width;
  const uint8_t* src = image.data_ptr<uint8_t>();
  const Id* ids = label.data_ptr<Id>();
  const int64_t plane = cropH * cropW;
  std::vector<Sample> columns;
  if (resized) {
    for (int64_t col = 0; col < cropW; ++col) {
      const int64_t c = crop.left + (crop.flip ? cropW - 1 - col : col);
      columns.push_back(c < shownW ? sampleOf(c, width, shownW) : Sample{-1, -1, -1, 0});
    }
  }
  for (int64_t row = 0; row < cropH; ++row) {
    const int64_t r = crop.top + row;
    float* planes[3] = {x + row * cropW, x + row * cropW + plane, x + row * cropW + 2 * plane};
    int64_t* out = y + row * cropW;
    const Sample rs = resized && r < shownH ? sampleOf(r, height, shownH) : Sample{-1, -1, -1, 0};
    for (int64_t col = 0; col < cropW; ++col) {
      const int64_t c = crop.left + (crop.flip ? cropW - 1 - col : col);
      if (r >= shownH || c >= shownW) {
        for (int k = 0; k < 3; ++k) planes[k][col] = table[k][0];
        out[col] = ignore;
      } else if (!resized) {
        const uint8_t* pixel = src + (r * width + c) * 3;
        for (int k = 0; k < 3; ++k) planes[k][col] = table[k][pixel[k]];
        out[col] = ids[r * width + c];
      } else {
        const Sample& cs = columns[col];
        const uint8_t* p00 = src + (rs.low * width + cs.low) * 3;
        const uint8_t* p01 = src + (rs.low * width + cs.high) * 3;
        const uint8_t* p10 = src + (rs.high * width + cs.low) * 3;
        const uint8_t* p11 = src + (rs.high * width + cs.high) * 3;
        for (int k = 0; k < 3; ++k) {
          const float top = static_cast<float>(p00[k]) + cs.frac * static_cast<float>(p01[k] - p00[k]);
          const float bottom = static_cast<float>(p10[k]) + cs.frac * static_cast<float>(p11[k] - p10[k]);
          const float value = top + rs.frac * (bottom - top);
          planes[k][col] = (value / 255.0f - static_cast<float>(mean[k])) / static_cast<float>(std[k]);
        }
        out[col] = ids[rs.nearest * width + cs.nearest];
      }
    }
  }
}
}  // namespace

std::pair<at::Tensor, at::Tensor> cropBatch(const std::vector<at::Tensor>& images,
                                            const std::vector<at::Tensor>& labels, const std::vector<Crop>& crops,
                                            int64_t cropH, int64_t cropW, const std::array<double, 3>& mean,
                                            const std::array<double, 3>& std, int64_t ignore) {
  if (images.size() != labels.size() || images.size() != crops.size() || images.empty()) {
    throw std::invalid_argument("cropBatch needs as many images, labels and crops, at least one");
  }
  if (cropH < 1 || cropW < 1) throw std::invalid_argument("cropBatch needs a crop of at least 1x1");
  auto batch = static_cast<int64_t>(images.size());
  for (int64_t b = 0; b < batch; ++b) {
    const at::Tensor& image = images[b];
    const at::Tensor& label = labels[b];
    if (image.scalar_type() != at::kByte || (label.scalar_type() != at::kByte && label.scalar_type() != at::kInt) ||
        image.dim() != 3 || image.size(2) != 3 || label.dim() != 2 || label.size(0) != image.size(0) ||
        label.size(1) != image.size(1)) {
      throw std::invalid_argument(
          "sample " + std::to_string(b) +
          ": expected a uint8 image [H, W, 3] and a uint8 or int32 label [H, W] of the same size");
    }
    if (crops[b].height < 0 || crops[b].width < 0 || (crops[b].height == 0) != (crops[b].width == 0)) {
      throw std::invalid_argument("sample " + std::to_string(b) + ": a resize needs a height and a width >= 1");
    }
    const int64_t shownH = crops[b].height > 0 ? crops[b].height : image.size(0);
    const int64_t shownW = crops[b].width > 0 ? crops[b].width : image.size(1);
    const int64_t height = std::max(shownH, cropH), width = std::max(shownW, cropW);
    if (crops[b].top < 0 || crops[b].left < 0 || crops[b].top + cropH > height || crops[b].left + cropW > width) {
      throw std::invalid_argument("sample " + std::to_string(b) + ": the crop window lies outside the image");
    }
  }
  // (x / 255 - mean) / std for every byte value, in float32 exactly as the chapter's
  // ToTensor + Normalize compute it; then each pixel is one table lookup.
  std::array<std::array<float, 256>, 3> table;
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      table[c][v] = (static_cast<float>(v) / 255.0f - static_cast<float>(mean[c])) / static_cast<float>(std[c]);
    }
  }
  at::Tensor X = recycledEmpty({batch, 3, cropH, cropW}, at::kFloat);
  at::Tensor Y = recycledEmpty({batch, cropH, cropW}, at::kLong);
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      at::Tensor image = images[b].contiguous();
      at::Tensor label = labels[b].contiguous();
      float* x = X.data_ptr<float>() + b * 3 * cropH * cropW;
      int64_t* y = Y.data_ptr<int64_t>() + b * cropH * cropW;
      if (label.scalar_type() == at::kByte) {
        cropOne<uint8_t>(image, label, crops[b], cropH, cropW, table, mean, std, ignore, x, y);
      } else {
        cropOne<int32_t>(image, label, crops[b], cropH, cropW, table, mean, std, ignore, x, y);
      }
    }
  });
  return {X, Y};
}

}  // namespace fcn::voc
