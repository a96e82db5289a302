// libFuzzer harness: an indexed PNG's rows to VOC class ids (unfiltering, palette lookup).
// Input: height and width (a byte each), the palette's colour count (a byte), its colours,
// then the inflated scanlines.
#include "core/voc_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const int64_t height = data[0], width = data[1], colours = data[2];
  if (size < 3 + 3 * static_cast<size_t>(colours)) return 0;
  const uint8_t* rest = data + 3 + 3 * colours;
  const int64_t rows = static_cast<int64_t>(size) - 3 - 3 * colours;
  try {
    at::Tensor palette = at::from_blob(const_cast<uint8_t*>(data + 3), {colours, 3}, at::kByte).clone();
    at::Tensor scanlines = at::from_blob(const_cast<uint8_t*>(rest), {rows}, at::kByte).clone();
    fcn::voc::paletteLabelIndices(scanlines, height, width, palette);
  } catch (const std::exception&) {
    // a refused label is the expected outcome of most inputs
  }
  return 0;
}
