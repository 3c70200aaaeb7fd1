// The layout the README promises: each folder under ts/ is one layer, a layer imports only from
// the layers below it (type imports too), and no two files import each other, even through others.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Lowest first, as README's Layout lists them. */
const LAYERS = ['wasm', 'registry', 'uri', 'bridge', 'trace', 'lifecycle', 'managed', 'rpc', 'proxy', 'objects', 'server', 'service', 'cli'];
const ROOT = join(process.cwd(), 'ts');
const SPECIFIER = /(?:^|[;\s])(?:import|export)\s[^;]*?\sfrom\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.c?ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  );
}

/** file (relative to ts/, .ts) → the files it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(ROOT)) {
    const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, '');
    const targets = [...text.matchAll(SPECIFIER)].map((m) =>
      relative(ROOT, normalize(join(dirname(file), m[1] ?? m[2]!))).replace(/\.c?js$/, (ext) => (ext === '.cjs' ? '.cts' : '.ts')),
    );
    graph.set(relative(ROOT, file), targets);
  }
  return graph;
}

const layerOf = (file: string): string => (file.includes('/') ? file.split('/')[0]! : '(entry)');

describe('ts/ layering', () => {
  const graph = importGraph();

  it('reads every layer and resolves every relative import to a file that exists', () => {
    expect(new Set([...graph.keys()].map(layerOf))).toEqual(new Set([...LAYERS, '(entry)']));
    const missing = [...graph].flatMap(([from, tos]) => tos.filter((to) => !graph.has(to)).map((to) => `${from} → ${to}`));
    expect(missing).toEqual([]);
  });

  it('no layer imports a higher layer or an entry point', () => {
    const upward = [...graph].flatMap(([from, tos]) => {
      const own = layerOf(from);
      if (own === '(entry)') return [];
      return tos.filter((to) => layerOf(to) === '(entry)' || LAYERS.indexOf(layerOf(to)) > LAYERS.indexOf(own)).map((to) => `${from} → ${to}`);
    });
    expect(upward).toEqual([]);
  });

  it('no import circles between files', () => {
    // Tarjan's strongly connected components: any component of more than one file is a circle.
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const circles: string[][] = [];
    const visit = (v: string): void => {
      index.set(v, index.size);
      low.set(v, index.get(v)!);
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!graph.has(w)) continue;
        if (!index.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        if (component.length > 1) circles.push(component.sort());
      }
    };
    for (const v of graph.keys()) if (!index.has(v)) visit(v);
    expect(circles).toEqual([]);
  });
});
