// Losses for class imbalance, as segmentation_models_pytorch defines them (its DiceLoss and
// FocalLoss in multiclass mode), over logits [B, C, H, W] and labels [B, H, W] (int64), on
// any device, differentiable through libtorch's autograd.
#pragma once

#include <ATen/ATen.h>

namespace fcn {

/// smp's DiceLoss(mode='multiclass', from_logits=True, smooth=0, eps=1e-7): per class,
/// 1 - 2 |P ∩ T| / (|P| + |T|) over the whole batch, with P the softmax probabilities and T
/// the one-hot labels, pixels labelled ignoreIndex left out; classes absent from the labels
/// count 0; the mean over the classes.
at::Tensor diceLoss(const at::Tensor& logits, const at::Tensor& labels, int64_t ignoreIndex);

/// smp's FocalLoss(mode='multiclass', alpha=None, gamma): per class, the mean over the
/// labelled pixels of (1 - p_t)^gamma BCE(logit, label == class) (sigmoid focal loss, as
/// RetinaNet's), summed over the classes. No labelled pixel: 0.
at::Tensor focalLoss(const at::Tensor& logits, const at::Tensor& labels, int64_t ignoreIndex, double gamma);

}  // namespace fcn
