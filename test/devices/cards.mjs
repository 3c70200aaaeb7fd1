// The test's handle on a virtual card (served by card-process.mjs in a child process): insert
// and remove on demand. The card is removed and its process ended by close().
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { adopt, stop } from './daemons.mjs';

const CARD_PROCESS = fileURLToPath(new URL('./card-process.mjs', import.meta.url));

export class VirtualCard {
  /** A card for the vpcd reader listening on port. */
  constructor(spec, port) {
    this.spec = spec;
    this.waiting = new Map();
    this.nextId = 1;
    this.inserted = false;
    const wire = spec.kind === 'pkcs15' ? { ...spec, objects: (spec.objects ?? []).map((o) => ({ ...o, value: o.value.toString('hex') })) } : spec;
    this.child = spawn(process.execPath, [CARD_PROCESS, JSON.stringify(wire), String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
    adopt(this.child);
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const { id, ok, error } = JSON.parse(line);
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

  command(op) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.stdin.write(`${JSON.stringify({ id, op })}\n`);
    });
  }

  /** Connects the card to its reader (pcscd sees a card insertion). */
  async insert() {
    await this.command('insert');
    this.inserted = true;
  }

  /** Disconnects it (pcscd sees the card removed). */
  async remove() {
    await this.command('remove');
    this.inserted = false;
  }

  async close() {
    this.child.stdin.end();
    const t = setTimeout(() => void stop(this.child), 5000);
    if (this.child.exitCode === null && this.child.signalCode === null) await new Promise((r) => this.child.once('exit', r));
    clearTimeout(t);
  }
}
