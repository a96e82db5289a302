/**
 * The classes of the heads of torchvision's segmentation models (built natively by the
 * builders of ./segmentation), so that `model.get('classifier')` and friends come back typed.
 */
import { Module, registerModuleClass } from '../nn/module';

/** torchvision's FCNHead: 3x3 conv to in/4 (no bias), BatchNorm, ReLU, Dropout(0.1), 1x1 conv (children 0..4). */
export class FCNHead extends Module {
  static {
    registerModuleClass('FCNHead', FCNHead);
  }
}

/** torchvision's DeepLabHead: ASPP, 3x3 conv 256 -> 256, BatchNorm, ReLU, 1x1 conv to the classes (children 0..4). */
export class DeepLabHead extends Module {
  static {
    registerModuleClass('DeepLabHead', DeepLabHead);
  }
}

/**
 * torchvision's ASPP: `convs` (a 1x1 branch, 3x3 branches at rates 12, 24 and 36, and image
 * pooling) concatenated, then `project` (1x1 conv to 256, BatchNorm, ReLU, Dropout(0.5)).
 */
export class ASPP extends Module {
  static {
    registerModuleClass('ASPP', ASPP);
  }
}

/** torchvision's ASPPPooling: global average pooling, 1x1 conv, BatchNorm, ReLU, upsampled back to the input's size. */
export class ASPPPooling extends Module {
  static {
    registerModuleClass('ASPPPooling', ASPPPooling);
  }
}

/**
 * torchvision's LRASPPHead: `cbr` (1x1 conv-BN-ReLU on the high-level features) gated by
 * `scale` (pooling, 1x1 conv, sigmoid), upsampled to the low-level map, then `low_classifier`
 * + `high_classifier`. It reads two feature maps, so it runs only inside its LRASPP model.
 */
export class LRASPPHead extends Module {
  static {
    registerModuleClass('LRASPPHead', LRASPPHead);
  }
}
