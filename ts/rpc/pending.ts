// The calls of one connection waiting for their replies, in the order they were sent: a ring of
// (code, entry) slots. A host answers in order, so a reply is nearly always the oldest call's and
// is taken from the front; one out of order is looked for and its slot closed up.
//
// Not a Map: a Map whose keys keep changing is rebuilt every few dozen calls, and each table it
// leaves behind points to the next one and still holds the entries it had. Once one of those
// tables is in V8's old space, every later table and every call they held survives each scavenge
// (until a full GC), which is what made the RPC client promote ~1.6 MB per scavenge with 16 calls
// in flight. The ring's arrays are the same ones from call to call, and a slot let go is cleared.

export class PendingCalls<T> {
  private codes: number[] = new Array<number>(16).fill(0);
  private entries: (T | undefined)[] = new Array<T | undefined>(16).fill(undefined);
  private head = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(code: number, entry: T): void {
    if (this.count === this.codes.length) this.grow();
    const at = (this.head + this.count) & (this.codes.length - 1);
    this.codes[at] = code;
    this.entries[at] = entry;
    this.count++;
  }

  /** The call waiting for `code`, no longer waiting; undefined when none is. */
  take(code: number): T | undefined {
    if (this.count === 0) return undefined;
    const mask = this.codes.length - 1;
    if (this.codes[this.head] === code) {
      const entry = this.entries[this.head];
      this.entries[this.head] = undefined;
      this.head = (this.head + 1) & mask;
      this.count--;
      return entry;
    }
    for (let i = 1; i < this.count; i++) {
      const at = (this.head + i) & mask;
      if (this.codes[at] !== code) continue;
      const entry = this.entries[at];
      // Close the gap: the later calls move one slot towards the front.
      for (let j = i; j < this.count - 1; j++) {
        const to = (this.head + j) & mask;
        const from = (to + 1) & mask;
        this.codes[to] = this.codes[from]!;
        this.entries[to] = this.entries[from];
      }
      this.entries[(this.head + this.count - 1) & mask] = undefined;
      this.count--;
      return entry;
    }
    return undefined;
  }

  /** Every waiting call, oldest first. */
  *values(): IterableIterator<T> {
    for (let i = 0; i < this.count; i++) yield this.entries[(this.head + i) & (this.codes.length - 1)]!;
  }

  /** Lets every call go. */
  clear(): void {
    this.entries.fill(undefined);
    this.head = 0;
    this.count = 0;
  }

  /** Doubles the ring (its size stays a power of two), oldest call first. */
  private grow(): void {
    const codes: number[] = new Array<number>(this.codes.length * 2).fill(0);
    const entries: (T | undefined)[] = new Array<T | undefined>(this.codes.length * 2).fill(undefined);
    for (let i = 0; i < this.count; i++) {
      const at = (this.head + i) & (this.codes.length - 1);
      codes[i] = this.codes[at]!;
      entries[i] = this.entries[at];
    }
    this.codes = codes;
    this.entries = entries;
    this.head = 0;
  }
}
