/**
 * The `nn` namespace: modules, torchvision's ResNets and MobileNetV3-Large, and functional
 * ops, named as in PyTorch.
 */
import * as functional from './functional';

export * from './layers';
export * from './mobilenet';
export { type LoadResult, Module, type StateDict } from './module';
export * from './resnet';
export { ModuleList, Sequential } from './sequential';
export { functional };
