/**
 * Pascal VOC2012 segmentation data, as the chapter's `d2l.load_data_voc` provides it.
 */

export { VOC_CLASSES, VOC_COLORMAP, VOC_IGNORE_INDEX, VOC_VOID_COLOUR } from './colours';
export { resolveVocRoot, VOCSegDataset, type VOCSegDatasetOptions } from './dataset';
export { download, VOC2012_TRAINVAL } from './download';
export { readLabel } from './labels';
export {
  type Batch,
  type ExampleSet,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type LoadDataVocOptions,
  loadDataVoc,
  loadSplit,
  type Shard,
  VOCBatches,
} from './loader';
export { type SynthesizeOptions, synthesize } from './synthesize';
