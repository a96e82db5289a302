/**
 * The VOC palette as the native label code knows it (class colours, the boundary colour and
 * the index it becomes) and the class names. Every TypeScript use reads these tables from
 * the addon, so there is one copy of them.
 */
import { native } from '../native';

/** The 21 VOC class colours, index = class id. */
export const VOC_COLORMAP: readonly (readonly [number, number, number])[] = native.voc.colormap;

/** The 21 VOC class names, index = class id. */
export const VOC_CLASSES = [
  'background',
  'aeroplane',
  'bicycle',
  'bird',
  'boat',
  'bottle',
  'bus',
  'car',
  'cat',
  'chair',
  'cow',
  'diningtable',
  'dog',
  'horse',
  'motorbike',
  'person',
  'potted plant',
  'sheep',
  'sofa',
  'train',
  'tv/monitor',
] as const;

/** The colour VOC draws object boundaries with; labels read it as {@link VOC_IGNORE_INDEX}. */
export const VOC_VOID_COLOUR: readonly [number, number, number] = native.voc.voidColour;

/** The class id of boundary pixels, which the loss and metrics ignore. */
export const VOC_IGNORE_INDEX: number = native.voc.ignoreIndex;
