#!/usr/bin/env node
// `npm test`'s markdown link check: every relative link of the repository's markdown files
// (README.md, ARCHITECTURE.md, CHANGELOG.md, docs/*.md, ...) points at a file or folder of the
// repository, and every #anchor, in the same file or another markdown file, names one of that
// file's headings as GitHub makes them into anchors. External links (http, https, mailto) are
// not followed. Prints "links: N checked in M files"; exits with 1 after listing each broken
// link as "file:line: link (why)".
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const skipped = ['node_modules/', 'deps/', 'test/fixtures/'];

/** The repository's files: tracked ones, and new ones that git does not ignore. */
function repositoryFiles(...patterns) {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z', '--', ...patterns], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  return [...new Set(out.split('\0').filter(Boolean))];
}

const files = new Set(repositoryFiles());
const folders = new Set();
for (const file of files) {
  for (let dir = path.posix.dirname(file); dir !== '.'; dir = path.posix.dirname(dir)) folders.add(dir);
}
const markdown = repositoryFiles('*.md')
  .filter((file) => !skipped.some((prefix) => file.startsWith(prefix)) && fs.existsSync(path.join(root, file)))
  .sort();

/**
 * The lines of a markdown text outside fenced code blocks, each with its 1-based number;
 * lines inside a fence come back empty, so that neither links nor headings are read there.
 */
function proseLines(text) {
  const lines = text.split(/\r?\n/);
  let fence = null; // the opening fence's character and length while inside one
  return lines.map((line, i) => {
    const open = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence === null && open) {
      fence = { char: open[1][0], length: open[1].length };
      return { number: i + 1, text: '' };
    }
    if (fence !== null) {
      const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
      if (close && close[1][0] === fence.char && close[1].length >= fence.length) fence = null;
      return { number: i + 1, text: '' };
    }
    return { number: i + 1, text: line };
  });
}

/** A line without its inline code spans (links are not read inside them). */
function withoutCode(line) {
  return line.replace(/(`+)[\s\S]*?\1/g, (span) => ' '.repeat(span.length));
}

/**
 * GitHub's anchor for a heading's text: inline markup removed (code backticks, emphasis, link
 * targets, HTML tags), lower case, every character that is not a letter, a digit, a space, a
 * hyphen or an underscore dropped, and each space made a hyphen.
 */
function slug(heading) {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

const anchorCache = new Map();
/** The anchors of a markdown file's headings (duplicates get -1, -2, ...) and HTML ids. */
function anchors(file) {
  if (anchorCache.has(file)) return anchorCache.get(file);
  const found = new Set();
  const seen = new Map();
  const add = (base) => {
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.add(count === 0 ? base : `${base}-${count}`);
  };
  const lines = proseLines(fs.readFileSync(path.join(root, file), 'utf8'));
  lines.forEach(({ text }, i) => {
    const atx = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/.exec(text);
    if (atx) {
      add(slug(atx[1] ?? ''));
    } else if (i + 1 < lines.length && text.trim() !== '' && /^ {0,3}(=+|-+)[ \t]*$/.test(lines[i + 1].text)) {
      // A setext heading: a one-line paragraph underlined with = or -, not a list item or a table.
      const before = i === 0 ? '' : lines[i - 1].text;
      const alone = before.trim() === '' || /^ {0,3}#{1,6}([ \t]|$)/.test(before);
      if (alone && !/^\s*([-*+]|\d+[.)])\s|^\s*\|/.test(text)) add(slug(text));
    }
    for (const [, id] of text.matchAll(/<a\s[^>]*(?:name|id)="([^"]+)"/gi)) found.add(id);
  });
  anchorCache.set(file, found);
  return found;
}

/** Each link of a line: inline links and images, [text](target "title"), and definitions. */
function links(line) {
  const found = [];
  const text = withoutCode(line);
  const inline =
    /!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g;
  for (const match of text.matchAll(inline)) found.push(match[1].replace(/^<|>$/g, ''));
  const definition = /^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(text);
  if (definition) found.push(definition[1].replace(/^<|>$/g, ''));
  return found;
}

const broken = [];
let checked = 0;
for (const file of markdown) {
  for (const { number, text } of proseLines(fs.readFileSync(path.join(root, file), 'utf8'))) {
    for (const link of links(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith('//')) continue; // http:, https:, mailto:, ...
      checked++;
      const report = (why) => broken.push(`${file}:${number}: ${link} (${why})`);
      const hash = link.indexOf('#');
      let target;
      let anchor;
      try {
        target = decodeURIComponent(hash < 0 ? link : link.slice(0, hash)).split('?')[0];
        anchor = hash < 0 ? null : decodeURIComponent(link.slice(hash + 1));
      } catch {
        report('not a valid URL');
        continue;
      }
      let resolved = file;
      if (target !== '') {
        resolved = target.startsWith('/')
          ? path.posix.normalize(target.slice(1))
          : path.posix.normalize(path.posix.join(path.posix.dirname(file), target));
        resolved = resolved.replace(/\/$/, '') || '.';
        if (resolved === '..' || resolved.startsWith('../')) {
          report('outside the repository');
          continue;
        }
        const absolute = path.join(root, resolved);
        if (!fs.existsSync(absolute)) {
          report('no such file');
          continue;
        }
        if (!files.has(resolved) && !folders.has(resolved) && resolved !== '.') {
          report('not in the repository: git ignores it');
          continue;
        }
        if (fs.statSync(absolute).isDirectory()) {
          if (anchor !== null) report('an anchor on a folder');
          continue;
        }
      }
      if (anchor === null || !resolved.toLowerCase().endsWith('.md')) continue;
      if (anchor === '') {
        report('an empty anchor');
      } else if (!anchors(resolved).has(anchor)) {
        report(`no heading #${anchor} in ${resolved}`);
      }
    }
  }
}

console.log(`links: ${checked} checked in ${markdown.length} files`);
for (const line of broken) console.log(line);
process.exit(broken.length > 0 ? 1 : 0);
