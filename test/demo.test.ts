// The README's main job keeps working: the demo runs end to end on the embedded default.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { havePcscd } from './devices/pcscd.mjs';

const root = new URL('..', import.meta.url).pathname;

describe('make demo', () => {
  it('runs the main job: registry, proxy, three service workers, one C_Initialize and one C_Finalize', () => {
    const r = spawnSync(process.execPath, [`${root}demo/demo.mjs`], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('softhsm2: /usr/lib/softhsm/libsofthsm2.so');
    expect(r.stdout).toMatch(/virtual slot 17: 'p11kit-demo'/);
    expect(r.stdout.match(/verified by the token: true, by node:crypto: true/g)).toHaveLength(3);
    expect(r.stdout).toContain('real C_Initialize calls: 1, real C_Finalize calls: 1');
    // The real-device part: a card insertion and removal through pcscd and OpenSC, when installed.
    if (havePcscd()) {
      expect(r.stdout).toMatch(/card inserted: slot event for slot (\d+) after \d+ ms; token present: true/);
      expect(r.stdout).toContain("label 'Demo Card', serial de1c0de5");
      expect(r.stdout).toMatch(/card removed: slot event for slot \d+ after \d+ ms; token present: false; findTokens -> 0 tokens/);
    } else {
      expect(r.stdout).toContain('skipped: this machine lacks pcscd');
    }
  });
});
