// A forgotten close() does not keep the process alive: the service worker holds the event loop
// only while a call, batch or stream awaits its answer. Each case runs in a child process of its
// own; a child that does not exit is killed by execFile's timeout and the test fails.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './helpers/softhsm.js';

const lib = new URL('../dist/lib/index.js', import.meta.url).href;
let hsm: SoftHsm;
let slot: number;
beforeAll(() => {
  hsm = createSoftHsm();
  slot = hsm.initToken('idle', '12345678', '1234');
});
afterAll(() => hsm.cleanup());

let n = 0;
/** Runs `body` as an ES module in a child (a file: --input-type would be inherited by the worker). */
const run = (body: string) => {
  const file = join(hsm.dir, `script-${n++}.mjs`);
  writeFileSync(file, `import * as lib from '${lib}';\n${body}`);
  return promisify(execFile)(process.execPath, [file], { env: hsm.env, timeout: 60_000 });
};

describe('service lifetime', () => {
  it('a script that never closes its service still exits, after its last answer', async () => {
    const { stdout } = await run(`
      const p11 = lib.createPkcs11Worker();
      const m = await p11.openModule('${SOFTHSM_MODULE}');
      const s = await m.openSession(${slot}, { pin: '1234' });
      console.log('random', (await s.generateRandom(8)).length);
      // Not awaited: the process must stay for the answer, then exit with the service still open.
      s.generateRandom(4).then((r) => console.log('late', r.length));
    `);
    expect(stdout.split('\n')).toEqual(['random 8', 'late 4', '']);
  });

  it('await using closes the service at the end of the scope', async () => {
    const { stdout } = await run(`
      let client;
      {
        const p11 = lib.createPkcs11Worker();
        client = p11;
        // TypeScript's \`await using p11 = ...\` calls this at the end of the block.
        try {
          console.log('ping', typeof (await p11.ping()).pid);
        } finally {
          await p11[Symbol.asyncDispose]();
        }
      }
      console.log('alive', client.alive);
    `);
    expect(stdout).toBe('ping number\nalive false\n');
  });
});
