import test from 'ava';
import { segmentationMetrics } from '../../src';

test('mean IoU and pixel accuracy of a confusion matrix computed by hand', (t) => {
  // Rows: truth, columns: prediction. Class 0: TP 50, FN 10 (5 + 5), FP 3 (2 + 1).
  const confusion = [
    [50, 5, 5, 0],
    [2, 30, 0, 0],
    [1, 4, 8, 0],
    [0, 0, 0, 0], // class 3 occurs nowhere: no IoU, left out of the mean
  ];
  const m = segmentationMetrics(confusion);
  const iou = [50 / (60 + 53 - 50), 30 / (32 + 39 - 30), 8 / (13 + 13 - 8)];
  t.deepEqual(m.classIoU, [...iou, null]);
  t.is(m.meanIoU, (iou[0] + iou[1] + iou[2]) / 3);
  t.is(m.pixelAccuracy, 88 / 105);
  t.throws(() => segmentationMetrics([[1, 2], [3]]), { message: /row 1 has 1 entries, not 2/ });
});
