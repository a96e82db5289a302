/**
 * The `nn` namespace: modules, ResNet-18 and functional ops, named as in PyTorch.
 */
import * as functional from './functional';

export * from './layers';
export { type LoadResult, Module, type StateDict } from './module';
export * from './resnet';
export { Sequential } from './sequential';
export { functional };
