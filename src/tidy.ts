/**
 * Tidy scopes, as TensorFlow.js's `tf.tidy`: every tensor made inside `tidy(fn)` is disposed
 * when fn ends, except the tensors that fn returns. Scopes follow async functions across
 * awaits (AsyncLocalStorage).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** What a scope holds and disposes: a tensor (tensor.ts imports this file, not the other way). */
export interface Disposable {
  dispose(): void;
}
type Scope = Set<Disposable>;
const scopes = new AsyncLocalStorage<Scope>();

/** @internal Puts a new tensor in the scope that is running, if any (the Tensor constructor calls it). */
export function track(t: Disposable): void {
  scopes.getStore()?.add(t);
}

/** The scope's tensors found anywhere inside value (arrays, plain objects, Maps). */
function keptIn(value: unknown, scope: Scope, out: Set<unknown>): Set<unknown> {
  if (value !== null && typeof value === 'object' && scope.has(value as Disposable)) {
    out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) keptIn(v, scope, out);
  } else if (value instanceof Map) {
    for (const v of value.values()) keptIn(v, scope, out);
  } else if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) keptIn(v, scope, out);
  }
  return out;
}

function closeScope(scope: Scope, parent: Scope | undefined, result: unknown): void {
  const kept = keptIn(result, scope, new Set());
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  scope.clear();
}

/**
 * Runs fn and then disposes every tensor created inside it, except the tensors in what fn
 * returns (inside arrays, plain objects or Maps), which move to the enclosing scope. Async
 * functions are followed across awaits (the scope ends when the promise settles).
 */
export function tidy<T>(fn: () => Promise<T>): Promise<T>;
export function tidy<T>(fn: () => T): T;
export function tidy<T>(fn: () => T | Promise<T>): T | Promise<T> {
  const parent = scopes.getStore();
  const scope: Scope = new Set();
  let result: T | Promise<T>;
  try {
    result = scopes.run(scope, fn);
  } catch (err) {
    closeScope(scope, parent, undefined);
    throw err;
  }
  if (result instanceof Promise) {
    return result.then(
      (value) => {
        closeScope(scope, parent, value);
        return value;
      },
      (err: unknown) => {
        closeScope(scope, parent, undefined);
        throw err;
      },
    );
  }
  closeScope(scope, parent, result);
  return result;
}

/** Takes tensor t out of the tidy scope it was made in: no scope disposes it; GC or dispose() frees it. */
export function keep<T extends Disposable>(t: T): T {
  scopes.getStore()?.delete(t);
  return t;
}
