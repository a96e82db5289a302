"""Dice and Focal losses as segmentation_models_pytorch defines them, for test/unit/losses.test.ts.

segmentation_models_pytorch is not in this machine's package index, so its multiclass
DiceLoss (from_logits=True, smooth=0, eps=1e-7, log_loss=False, classes=None) and FocalLoss
(alpha=None, normalized=False, reduced_threshold=None, reduction='mean') are written out below
as its losses/dice.py, losses/focal.py and losses/_functional.py compute them, with PyTorch.
Writes test/fixtures/losses.safetensors: logits, labels (255 ignored), each loss and its
gradient with respect to the logits.
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "losses.safetensors"


def smp_dice_loss(y_pred, y_true, ignore_index):
    bs, num_classes, dims = y_true.size(0), y_pred.size(1), (0, 2)
    y_pred = y_pred.log_softmax(dim=1).exp()
    y_true = y_true.view(bs, -1)
    y_pred = y_pred.view(bs, num_classes, -1)
    mask = y_true != ignore_index
    y_pred = y_pred * mask.unsqueeze(1)
    y_true = F.one_hot((y_true * mask).to(torch.long), num_classes)
    y_true = y_true.permute(0, 2, 1) * mask.unsqueeze(1)
    y_true = y_true.type_as(y_pred)
    intersection = torch.sum(y_pred * y_true, dim=dims)
    cardinality = torch.sum(y_pred + y_true, dim=dims)
    scores = (2.0 * intersection) / cardinality.clamp_min(1e-7)
    loss = 1.0 - scores
    loss *= (y_true.sum(dims) > 0).to(loss.dtype)
    return loss.mean()


def smp_focal_loss_with_logits(output, target, gamma):
    target = target.type(output.type())
    logpt = F.binary_cross_entropy_with_logits(output, target, reduction="none")
    pt = torch.exp(-logpt)
    return ((1.0 - pt).pow(gamma) * logpt).mean()


def smp_focal_loss(y_pred, y_true, ignore_index, gamma):
    not_ignored = y_true != ignore_index
    loss = 0
    for cls in range(y_pred.size(1)):
        cls_y_true = (y_true == cls).long()[not_ignored]
        cls_y_pred = y_pred[:, cls, ...][not_ignored]
        loss += smp_focal_loss_with_logits(cls_y_pred, cls_y_true, gamma)
    return loss


def main():
    torch.manual_seed(33)
    logits = torch.randn(2, 5, 6, 7, dtype=torch.float64) * 3
    labels = torch.randint(0, 4, (2, 6, 7))  # class 4 absent: its Dice term counts 0
    labels[0, :2, :] = 255
    out = {"logits": logits, "labels": labels}
    for name, fn in (
        ("dice", lambda x: smp_dice_loss(x, labels, 255)),
        ("focal", lambda x: smp_focal_loss(x, labels, 255, 2.0)),
        ("focal_gamma_0.5", lambda x: smp_focal_loss(x, labels, 255, 0.5)),
    ):
        x = logits.clone().requires_grad_(True)
        value = fn(x)
        value.backward()
        out[name] = value.detach().reshape(1)
        out[f"{name}.grad"] = x.grad
    save_file({k: v.contiguous() for k, v in out.items()}, str(OUT))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
