/**
 * A dataset's classes: their names and colours, from the class file at the dataset's root
 * (`classes.txt` or `classes.json`) or made up from the labels found. Colours follow VOC's
 * palette, extended past its 21 classes by the bit interleaving that makes it (PASCAL's
 * `color_map`), unless the class file gives them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { VOC_CLASSES, VOC_COLORMAP } from '../voc/colours';

/** An RGB colour, each channel 0..255. */
export type Colour = [number, number, number];

/** One class: its name and the colour it is drawn with (and, in colour masks, labelled with). */
export interface ClassInfo {
  name: string;
  color: Colour;
}

/** The most classes a dataset may have (16-bit masks). */
export const MAX_CLASSES = 65_535;

/**
 * The colour of class id: VOC's palette, extended past its 21 classes by the same bit
 * interleaving that makes it (PASCAL's `color_map`), distinct for every id below 2^24.
 */
export function classColour(id: number): Colour {
  if (id < VOC_COLORMAP.length) return [...VOC_COLORMAP[id]] as Colour;
  const rgb: Colour = [0, 0, 0];
  let c = id;
  for (let shift = 7; shift >= 0; shift--) {
    for (let k = 0; k < 3; k++) rgb[k] |= ((c >> k) & 1) << shift;
    c >>= 3;
  }
  return rgb;
}

/** The classes of n unnamed classes: VOC's names for 21, background/foreground for 2, else `class_k`. */
export function defaultClasses(n: number): ClassInfo[] {
  const names: readonly string[] =
    n === VOC_CLASSES.length
      ? VOC_CLASSES
      : n === 2
        ? ['background', 'foreground']
        : Array.from({ length: n }, (_, k) => `class_${k}`);
  return names.map((name, id) => ({ name, color: classColour(id) }));
}

/** The class files looked for at a dataset's root, in this order. */
export const CLASS_FILES = ['classes.json', 'classes.txt'] as const;

const colourSchema = z.tuple([z.int().min(0).max(255), z.int().min(0).max(255), z.int().min(0).max(255)]);
const classFileSchema = z.union([
  z.array(z.string().min(1)).min(1).max(MAX_CLASSES),
  z
    .array(z.object({ name: z.string().min(1), color: colourSchema.optional(), colour: colourSchema.optional() }))
    .min(1)
    .max(MAX_CLASSES),
]);

/** What a class file says: the classes, and whether it gave their colours (then colour masks map through them). */
export interface ClassFile {
  file: string;
  classes: ClassInfo[];
  colours: boolean;
}

/** Text of a file without a UTF-8 byte-order mark. */
export function readText(file: string): string {
  return fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
}

/** The lines of a text file: BOM and CR line ends removed, blank lines and surrounding spaces dropped. */
export function readLines(file: string): string[] {
  return readText(file)
    .split(/\r?\n|\r/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
}

/**
 * The class file at root (`classes.json`: an array of names, or of `{ "name", "color": [r, g, b] }`;
 * `classes.txt`: one name a line, line i = class i), or null when there is none. A file that
 * says something else is an error naming it and what is wrong.
 */
export function readClassFile(root: string): ClassFile | null {
  for (const name of CLASS_FILES) {
    const file = path.join(root, name);
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
    if (name === 'classes.txt') {
      const names = readLines(file);
      if (names.length === 0) throw new Error(`the class file '${file}' names no class`);
      if (names.length > MAX_CLASSES)
        throw new Error(`the class file '${file}' names more than ${MAX_CLASSES} classes`);
      return { file, classes: names.map((n, id) => ({ name: n, color: classColour(id) })), colours: false };
    }
    let json: unknown;
    try {
      json = JSON.parse(readText(file));
    } catch (err) {
      throw new Error(`the class file '${file}' is not JSON: ${(err as Error).message}`);
    }
    const parsed = classFileSchema.safeParse(json);
    if (!parsed.success) {
      throw new Error(
        `the class file '${file}' is neither an array of names nor of { "name", "color": [r, g, b] } ` +
          `(${parsed.error.issues[0].path.join('.') || 'top level'}: ${parsed.error.issues[0].message})`,
      );
    }
    const entries = parsed.data.map((e) =>
      typeof e === 'string' ? { name: e, given: undefined } : { name: e.name, given: e.color ?? e.colour },
    );
    const given = entries.map((e) => e.given);
    const colours = given.every((c) => c !== undefined);
    if (!colours && given.some((c) => c !== undefined)) {
      throw new Error(`the class file '${file}' gives colours for some classes only; give one for every class or none`);
    }
    const classes = entries.map((e, id) => ({ name: e.name, color: given[id] ?? classColour(id) }));
    if (colours) {
      const seen = new Map<string, number>();
      classes.forEach((c, id) => {
        const key = c.color.join(',');
        const other = seen.get(key);
        if (other !== undefined) {
          throw new Error(
            `the class file '${file}' gives classes ${other} (${classes[other].name}) and ${id} (${c.name}) the same colour (${key})`,
          );
        }
        seen.set(key, id);
      });
    }
    return { file, classes, colours };
  }
  return null;
}
