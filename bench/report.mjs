// Each benchmark hands its headline rows to the roll-up (bench/all.mjs) through report(). With
// BENCH_JSON=<file> set, every row is appended to that file as one JSON line; without it nothing
// happens, so a bench run by hand prints exactly what it always printed.
import { appendFileSync } from 'node:fs';

/**
 * @typedef {object} BenchRow
 * @property {string} bench          the benchmark's file name without `.mjs`
 * @property {string} case           what was measured
 * @property {number} ours           our figure, in `unit`
 * @property {number} reference      the reference's figure, in `unit`
 * @property {string} referenceName  'native C' | 'libp11-kit' | 'pkcs11js' | 'in-thread' | …
 * @property {string} unit           a time per operation ('ns', 'µs', 'ms': lower is better) or a
 *                                   rate ('ops/s': higher is better)
 * @property {number} [ratio]        our speed over the reference's (> 1: ours is faster); derived
 *                                   from ours, reference and unit when absent
 * @property {number|string} [target]  a minimum ratio, or a target in words
 * @property {number} [targetRatio]  the ratio line to chart when the target is in words
 * @property {boolean} [met]         derived from a numeric target when absent
 * @property {string} [detail]       a short note shown next to `met` (e.g. the added ns per call)
 */

const RATES = new Set(['ops/s']);

/** Our speed relative to the reference's: times are inverted, rates are not. */
export function speedRatio(ours, reference, unit) {
  return RATES.has(unit) ? ours / reference : reference / ours;
}

/** A complete row: ratio and met filled in, every number checked (a bench bug must be loud). */
export function completeRow(row) {
  const out = { ...row };
  for (const k of ['bench', 'case', 'referenceName', 'unit'])
    if (typeof out[k] !== 'string' || out[k] === '') throw new TypeError(`bench row: '${k}' must be a non-empty string (${JSON.stringify(row)})`);
  out.ratio ??= speedRatio(out.ours, out.reference, out.unit);
  if (typeof out.target === 'number') out.met ??= out.ratio >= out.target;
  for (const k of ['ours', 'reference', 'ratio', ...(out.target === undefined || typeof out.target === 'string' ? [] : ['target']), ...(out.targetRatio === undefined ? [] : ['targetRatio'])])
    if (typeof out[k] !== 'number' || !Number.isFinite(out[k])) throw new TypeError(`bench row '${out.case}': '${k}' must be a finite number, got ${out[k]}`);
  if (out.target !== undefined && typeof out.met !== 'boolean') throw new TypeError(`bench row '${out.case}': a target in words needs an explicit 'met'`);
  return out;
}

/** Hands rows to the roll-up when it is listening (BENCH_JSON); a no-op otherwise. */
export function report(rows) {
  const complete = rows.map(completeRow);
  const file = process.env.BENCH_JSON;
  if (file) appendFileSync(file, complete.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return complete;
}
