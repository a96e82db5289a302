/**
 * Pascal VOC2012 segmentation data, as the chapter's `d2l.load_data_voc` provides it.
 */

export { VOC_CLASSES, VOC_COLORMAP, VOCSegDataset, type VOCSegDatasetOptions } from './dataset';
export { download, VOC2012_TRAINVAL } from './download';
export { type Batch, type LoadDataVocOptions, loadDataVoc, VOCBatches } from './loader';
export { type SynthesizeOptions, synthesize } from './synthesize';
