#include "train/losses.h"

#include <stdexcept>

#include "core/describe.h"

namespace fcn {

namespace {
void checkFit(const at::Tensor& logits, const at::Tensor& labels, const char* what) {
  if (logits.dim() != 4 || !at::isFloatingType(logits.scalar_type()) || labels.dim() != 3 ||
      labels.scalar_type() != at::kLong || logits.size(0) != labels.size(0) || logits.size(2) != labels.size(1) ||
      logits.size(3) != labels.size(2)) {
    throw std::invalid_argument(std::string(what) +
                                ": expected float logits [B, C, H, W] and int64 labels [B, H, W], got " +
                                describeTensor(logits) + " and " + describeTensor(labels));
  }
}
}  // namespace

at::Tensor diceLoss(const at::Tensor& logits, const at::Tensor& labels, int64_t ignoreIndex) {
  checkFit(logits, labels, "diceLoss");
  const int64_t classes = logits.size(1);
  at::Tensor valid = (labels != ignoreIndex).unsqueeze(1);  // [B, 1, H, W]
  at::Tensor probs = at::softmax(logits, 1) * valid;        // P, ignored pixels 0
  at::Tensor ids = at::where(valid.squeeze(1), labels, 0);  // class 0 where ignored, zeroed below
  at::Tensor truth = at::one_hot(ids, classes).permute({0, 3, 1, 2}).to(probs.scalar_type()) * valid;
  std::vector<int64_t> dims{0, 2, 3};
  at::Tensor intersection = (probs * truth).sum(dims);
  at::Tensor cardinality = (probs + truth).sum(dims);
  at::Tensor present = truth.sum(dims) > 0;
  at::Tensor score = 2.0 * intersection / cardinality.clamp_min(1e-7);
  return ((1.0 - score) * present).mean();
}

at::Tensor focalLoss(const at::Tensor& logits, const at::Tensor& labels, int64_t ignoreIndex, double gamma) {
  checkFit(logits, labels, "focalLoss");
  const int64_t classes = logits.size(1);
  at::Tensor valid = (labels != ignoreIndex).unsqueeze(1);
  at::Tensor target =
      (labels.unsqueeze(1) == at::arange(classes, labels.options()).view({1, classes, 1, 1})).to(logits.scalar_type());
  at::Tensor logpt = at::binary_cross_entropy_with_logits(logits, target, {}, {}, at::Reduction::None);
  at::Tensor focal = (1.0 - at::exp(-logpt)).pow(gamma) * logpt * valid;
  return focal.sum() / valid.sum().clamp_min(1).to(logits.scalar_type());
}

}  // namespace fcn
