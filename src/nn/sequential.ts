/**
 * Sequential: modules run in order, in one native call per forward.
 */
import { native } from '../native';
import { Module, registerModuleClass } from './module';

/**
 * Runs its children in order (PyTorch's `nn.Sequential`). Children passed to the
 * constructor are named "0", "1", ...; {@link Sequential.addModule} appends under a name.
 * Children are shared, not copied: `new Sequential(...resnet.children().slice(0, -2))`
 * uses the ResNet's own layers and weights.
 */
export class Sequential extends Module {
  /** The native registry's name of this kind. */
  static readonly kind = registerModuleClass('Sequential', this);

  constructor(...modules: Module[]) {
    super(native.createModule(Sequential.kind, {}));
    modules.forEach((m, i) => {
      this.addModule(String(i), m);
    });
  }

  /** Appends module under name (not empty, no '.', not already taken). */
  addModule(name: string, module: Module): this {
    if (typeof name !== 'string' || name === '' || name.includes('.')) {
      throw new TypeError(`addModule: name must be a non-empty string without '.', got ${JSON.stringify(name)}`);
    }
    if (!(module instanceof Module)) throw new TypeError(`addModule('${name}'): expected a Module`);
    this.native.addModule(name, module.native);
    return this;
  }

  /** Number of children. */
  get length(): number {
    return this.native.namedChildren().length;
  }
}

/**
 * Holds modules by index without running them (PyTorch's `nn.ModuleList`), as torchvision's
 * ASPP holds its branches; its forward is an error.
 */
export class ModuleList extends Module {
  static {
    registerModuleClass('ModuleList', ModuleList);
  }
}
