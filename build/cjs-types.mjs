// CommonJS consumers' declarations. Node >= 20.19 require()s the ES module build itself, but
// TypeScript under `node16` resolution will not let a CommonJS file import ESM declarations
// (TS1471/TS1479). So the declarations are copied into dist/cjs-types, a folder marked
// "type": "commonjs", where the same files read as CommonJS ones.
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const FROM = 'dist/lib';
const TO = 'dist/cjs-types';

// `import { type A } from 'koffi'` is a real import as far as module format goes, and koffi's
// declarations are ES ones: a CommonJS file may only import their types, and must say so.
const inlineTypeOnly = /^import \{((?:\s*type \w+(?: as \w+)?,?)+)\s*\} from ('[^.'][^']*');$/gm;
const typeOnly = (text) =>
  text.replace(inlineTypeOnly, (_, names, from) => `import type {${names.replace(/\btype /g, '')} } from ${from} with { 'resolution-mode': 'import' };`);

function copy(dir) {
  for (const name of readdirSync(join(FROM, dir))) {
    const rel = join(dir, name);
    if (statSync(join(FROM, rel)).isDirectory()) copy(rel);
    else if (name.endsWith('.d.ts')) {
      mkdirSync(join(TO, dir), { recursive: true });
      writeFileSync(join(TO, rel), typeOnly(readFileSync(join(FROM, rel), 'utf8')));
    }
  }
}

rmSync(TO, { recursive: true, force: true });
copy('');
writeFileSync(join(TO, 'package.json'), '{ "type": "commonjs" }\n');
