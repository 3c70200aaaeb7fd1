// The wasm core's one view of its memory, shared by the layers above it (URI, registry): kept
// while the memory stays, re-made once growth has detached the buffer it saw.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '../ts/registry/load.js';
import { normalizeUri } from '../ts/uri/index.js';
import { core } from '../ts/wasm/core.js';

const work = mkdtempSync(join(tmpdir(), 'p11kit-wasm-core-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('wasm core: the heap view', () => {
  it('is one view until the memory grows, then a view of the new buffer', () => {
    const c = core();
    const before = c.heap;
    expect(c.heap === before).toBe(true);
    const grown = c.exports.p11w_alloc(8 << 20); // more than is free: the memory grows
    try {
      expect(grown).not.toBe(0);
      expect(before.length).toBe(0); // detached by the growth
      expect(c.heap === before).toBe(false);
      expect(c.heap.buffer === c.exports.memory.buffer).toBe(true);
      expect(c.heap32.buffer === c.exports.memory.buffer).toBe(true);
      c.heap32[grown >>> 2] = 0x01020304;
      expect(c.u32(grown)).toBe(0x01020304);
      expect(c.heap[grown]).toBe(0x04); // the core is little-endian
    } finally {
      c.exports.p11w_free(grown);
    }
  });

  it('the registry and the URI layer each see what the other grew', () => {
    const modules = join(work, 'modules');
    const filler = 'x'.repeat(3 << 20);
    mkdirSync(modules);
    writeFileSync(join(modules, 'big.module'), `module: /x/big.so\nx-filler: ${filler}\n`);
    expect(normalizeUri('pkcs11:token=a%2c', { lowercase: false })).toBe('pkcs11:token=a%2C');
    const size = core().exports.memory.buffer.byteLength;
    const reg = loadRegistry({ systemConfig: '/nonexistent', userConfig: '/nonexistent', packageModules: '/nonexistent', systemModules: modules, userModules: '/nonexistent', program: 'x', probe: false });
    expect(reg.modules.map((m) => [m.name, m.options['x-filler']?.length])).toEqual([['big', filler.length]]);
    const big = `pkcs11:object=${'b'.repeat(5 << 20)}`;
    expect(normalizeUri(big, { lowercase: false })).toBe(big);
    expect(core().exports.memory.buffer.byteLength).toBeGreaterThan(size);
    const again = loadRegistry({ systemConfig: '/nonexistent', userConfig: '/nonexistent', packageModules: '/nonexistent', systemModules: modules, userModules: '/nonexistent', program: 'x', probe: false });
    expect(again.modules[0].options['x-filler']).toBe(filler);
    expect(normalizeUri('pkcs11:token=after%2c', { lowercase: false })).toBe('pkcs11:token=after%2C');
  });
});
