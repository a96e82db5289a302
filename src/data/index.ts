/**
 * Datasets as people have them: VOC2012's tree, or image/mask folders with a class file,
 * read whole, checked, and batched for training (see {@link loadData}).
 */

export { medianFrequencyWeights, readClassWeights } from './class-weights';
export {
  CLASS_FILES,
  type ClassInfo,
  type Colour,
  classColour,
  defaultClasses,
  MAX_CLASSES,
  readClassFile,
} from './classes';
export {
  DATA_FORMATS,
  type DataFormat,
  type DatasetSplit,
  detectFormat,
  disposeDataset,
  type ReadDatasetOptions,
  readDataset,
  type SegmentationData,
} from './dataset';
export { IMAGE_EXTENSIONS, MASK_EXTENSIONS, MASK_FOLDERS, type Pair, type Problem } from './folders';
export { type LoadDataOptions, type LoadedData, loadData, writeSplit } from './loader';
