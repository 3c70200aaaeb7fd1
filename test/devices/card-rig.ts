// The rig of the card suites: a private pcscd, this process pointed at it (PC/SC and OpenSC
// settings are read from the environment, so they are set before anything loads a PC/SC
// client: each suite file runs in a process of its own), and one virtual card per reader slot.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualCard, type CardSpec } from './cards.mjs';
import { writeOpenscConf } from './opensc.mjs';
import { startPcscd, type Pcscd } from './pcscd.mjs';

export type CardRig = {
  pcscd: Pcscd;
  /** The environment a child process needs to see the same readers with the same OpenSC settings. */
  env: NodeJS.ProcessEnv;
  card: VirtualCard;
  /** The reader the card goes into. */
  reader: string;
  close(): Promise<void>;
};

export async function startCardRig(spec: CardSpec, readerName = 'Virtual PCD'): Promise<CardRig> {
  const pcscd = await startPcscd(readerName);
  const dir = mkdtempSync(join(tmpdir(), 'p11kit-opensc-'));
  const vars = { ...pcscd.env, OPENSC_CONF: writeOpenscConf(dir) };
  Object.assign(process.env, vars);
  const card = new VirtualCard(spec, pcscd.readers[0].port);
  return {
    pcscd,
    env: { ...process.env, ...vars },
    card,
    reader: pcscd.readers[0].name,
    close: async () => {
      await card.close();
      await pcscd.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with the promise's value, or rejects naming what did not happen in time. */
export function within<T>(what: string, p: Promise<T>, ms = 20_000): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]);
}
