#!/usr/bin/env node
// `npm test`'s architecture check (ARCHITECTURE.md): every native file includes only its own
// layer and the layers below it (and only native/addon includes Node-API), and no TypeScript
// module imports itself through others (import circles, type-only imports included).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const problems = [];

// Layers, lowest first, and what each may include besides the libtorch headers.
const layers = {
  core: ['core'],
  models: ['core', 'models'],
  distributed: ['core', 'distributed'],
  train: ['core', 'models', 'distributed', 'train'],
  addon: ['core', 'models', 'distributed', 'train', 'addon'],
};
for (const [layer, allowed] of Object.entries(layers)) {
  const dir = path.join(root, 'native', layer);
  for (const file of fs.readdirSync(dir).filter((f) => /\.(cc|h)$/.test(f))) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    for (const [, target] of text.matchAll(/^#include\s+"([^"]+)"/gm)) {
      const top = target.split('/')[0];
      if (!allowed.includes(top))
        problems.push(`native/${layer}/${file} includes "${target}" (${layer} may include ${allowed.join(', ')})`);
    }
    if (layer !== 'addon' && /^#include\s+<napi\.h>/m.test(text)) {
      problems.push(`native/${layer}/${file} includes <napi.h>: only native/addon binds Node-API`);
    }
    if (layer === 'core' && /^#include\s+<torch\//m.test(text)) {
      problems.push(`native/core/${file} includes a <torch/...> header: the core uses ATen and c10 only`);
    }
  }
}

// TypeScript import circles in src/.
const src = path.join(root, 'src');
const modules = new Map();
const walk = (dir) => {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full);
    else if (entry.name.endsWith('.ts')) modules.set(full, []);
  }
};
walk(src);
const resolve = (from, spec) => {
  const base = path.resolve(path.dirname(from), spec);
  return [`${base}.ts`, path.join(base, 'index.ts')].find((f) => modules.has(f));
};
for (const file of modules.keys()) {
  const text = fs.readFileSync(file, 'utf8');
  for (const [, spec] of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']*)'/gms)) {
    const target = resolve(file, spec);
    if (target) modules.get(file).push(target);
  }
}
const state = new Map(); // 1: on the current path, 2: done
const stack = [];
const visit = (file) => {
  state.set(file, 1);
  stack.push(file);
  for (const next of modules.get(file)) {
    if (state.get(next) === 1) {
      const circle = stack
        .slice(stack.indexOf(next))
        .concat(next)
        .map((f) => path.relative(root, f));
      problems.push(`import circle: ${circle.join(' -> ')}`);
    } else if (!state.has(next)) {
      visit(next);
    }
  }
  stack.pop();
  state.set(file, 2);
};
for (const file of modules.keys()) if (!state.has(file)) visit(file);

if (problems.length > 0) {
  for (const p of problems) console.error(`architecture: ${p}`);
  process.exit(1);
}
console.log(
  `architecture: ${Object.keys(layers).length} native layers keep their includes; ${modules.size} TypeScript modules, no import circles`,
);
