// The calls a connection waits on (ts/rpc/pending.ts): replies in order, out of order, unknown
// codes, more calls than the ring first holds, and a ring that wraps around, checked against a
// plain list of the same operations.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PendingCalls } from '../ts/rpc/pending.js';

describe('PendingCalls', () => {
  it('hands each call back once, by its code, in or out of order', () => {
    const calls = new PendingCalls<string>();
    for (let code = 1; code <= 5; code++) calls.add(code, `call ${code}`);
    expect(calls.take(1)).toBe('call 1');
    expect(calls.take(4)).toBe('call 4');
    expect(calls.take(4)).toBeUndefined();
    expect(calls.take(99)).toBeUndefined();
    expect(calls.size).toBe(3);
    expect([...calls.values()]).toEqual(['call 2', 'call 3', 'call 5']);
    expect(calls.take(2)).toBe('call 2');
    expect(calls.take(5)).toBe('call 5');
    expect(calls.take(3)).toBe('call 3');
    expect(calls.size).toBe(0);
    expect(calls.take(3)).toBeUndefined();
  });

  it('grows past its first size while wrapped around, keeping the order', () => {
    const calls = new PendingCalls<number>();
    let next = 1;
    // Move the front along so the ring has wrapped when it must grow.
    for (let i = 0; i < 10; i++) calls.add(next++, i);
    for (let code = 1; code <= 10; code++) calls.take(code);
    for (let i = 0; i < 40; i++) calls.add(next, next++);
    expect([...calls.values()]).toEqual(Array.from({ length: 40 }, (_, i) => 11 + i));
    calls.clear();
    expect(calls.size).toBe(0);
    expect([...calls.values()]).toEqual([]);
    expect(calls.take(11)).toBeUndefined();
  });

  it('agrees with a plain list on any sequence of adds and takes', () => {
    const op = fc.oneof(fc.constant({ add: true, pick: 0 }), fc.record({ add: fc.constant(false), pick: fc.nat(60) }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const calls = new PendingCalls<string>();
        const model: number[] = [];
        let next = 1;
        for (const o of ops) {
          if (o.add) {
            calls.add(next, `c${next}`);
            model.push(next++);
          } else {
            // Mostly codes that are waiting (the front or any other), sometimes one that is not.
            const code = o.pick < model.length ? model[o.pick]! : next + o.pick;
            const i = model.indexOf(code);
            expect(calls.take(code)).toBe(i < 0 ? undefined : `c${code}`);
            if (i >= 0) model.splice(i, 1);
          }
          expect(calls.size).toBe(model.length);
        }
        expect([...calls.values()]).toEqual(model.map((c) => `c${c}`));
      }),
    );
  });
});
