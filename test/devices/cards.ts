// The test's handle on a virtual card (served by card-process.mjs in a child process): insert
// and remove on demand. The card is removed and its process ended by close().
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { adopt, stop } from './daemons.js';

export type DataObject = { label: string; application: string; value: Buffer };
/** A read-only PKCS#15 card (OpenSC's default driver): token label, serial (hex digits), data objects. */
export type Pkcs15Card = { kind: 'pkcs15'; label: string; serial: string; objects?: DataObject[] };
/** An empty PIV applet (stock OpenSC, ykcs11); serial is what Yubico's GET SERIAL answers. */
export type PivCard = { kind: 'piv'; serial?: number };
export type CardSpec = Pkcs15Card | PivCard;

const CARD_PROCESS = fileURLToPath(new URL('./card-process.mjs', import.meta.url));

export class VirtualCard {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, { resolve(): void; reject(e: Error): void }>();
  private nextId = 1;
  inserted = false;

  /** A card for the vpcd reader listening on port. */
  constructor(readonly spec: CardSpec, port: number) {
    const wire = spec.kind === 'pkcs15' ? { ...spec, objects: (spec.objects ?? []).map((o) => ({ ...o, value: o.value.toString('hex') })) } : spec;
    this.child = spawn(process.execPath, [CARD_PROCESS, JSON.stringify(wire), String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
    adopt(this.child);
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const { id, ok, error } = JSON.parse(line) as { id: number; ok: boolean; error?: string };
      const w = this.waiting.get(id);
      this.waiting.delete(id);
      if (ok) w?.resolve();
      else w?.reject(new Error(`virtual card: ${error}`));
    });
    this.child.once('exit', () => {
      for (const w of this.waiting.values()) w.reject(new Error('the virtual card process exited'));
      this.waiting.clear();
    });
  }

  private command(op: 'insert' | 'remove'): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, op })}\n`);
    });
  }

  /** Connects the card to its reader (pcscd sees a card insertion). */
  async insert(): Promise<void> {
    await this.command('insert');
    this.inserted = true;
  }

  /** Disconnects it (pcscd sees the card removed). */
  async remove(): Promise<void> {
    await this.command('remove');
    this.inserted = false;
  }

  async close(): Promise<void> {
    this.child.stdin!.end();
    const t = setTimeout(() => void stop(this.child), 5000);
    if (this.child.exitCode === null && this.child.signalCode === null) await new Promise((r) => this.child.once('exit', r));
    clearTimeout(t);
  }
}
