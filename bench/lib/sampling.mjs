// Interleaved sampling for the benches. Every contender of a comparison ("cell") is a function
// `run(n)` that performs n operations and returns the nanoseconds they took. All cells are
// warmed up, sized so that one sample takes about SAMPLE_MS, then sampled round by round in a
// rotating order, in this one process: a burst of load on the shared machine hits every cell of
// a round alike, and ratios are taken within a round before the median over rounds.
import koffi from 'koffi';

export const SAMPLE_MS = Number(process.env.BENCH_SAMPLE_MS ?? 25);
export const WARM_MS = Number(process.env.BENCH_WARM_MS ?? 200);
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);

let sink = 0;
/** Keeps results alive so that no work is optimised away. */
export const consume = (v) => (sink += v | 0);
export const sinkValue = () => sink;

/**
 * A cell timing `op()` in a loop of its own (a fresh function per op keeps the call site
 * monomorphic). op returns a number that is consumed.
 */
export function jsCell(op) {
  const loop = new Function('op', 'now', 'return function (n) { let s = 0; const t0 = now(); for (let i = 0; i < n; i++) s += op() | 0; const t = now() - t0; return [t, s]; }')(op, () => process.hrtime.bigint());
  return (n) => {
    const [t, s] = loop(n);
    sink += s;
    return Number(t);
  };
}

/** ops needed for one sample of about ms milliseconds. */
function size(run, ms) {
  let n = 1;
  for (;;) {
    const t = run(n);
    if (t < 0) throw new Error('a native loop reported a failed call');
    if (t >= ms * 1e6 * 0.25 || n >= 1 << 26) return Math.max(1, Math.round((n * ms * 1e6) / Math.max(t, 1)));
    n *= 4;
  }
}

/**
 * Samples every cell (name → run(n)) over ROUNDS interleaved rounds. Returns name → ns per op
 * per round (arrays aligned by round). With `between`, an async function awaited after each
 * round (another process's round: its samples interleave with ours), the result is a promise.
 */
export function sampleInterleaved(cells, { rounds = ROUNDS, sampleMs = SAMPLE_MS, warmMs = WARM_MS, between } = {}) {
  const names = Object.keys(cells);
  const sizes = {};
  for (const name of names) {
    const run = cells[name];
    const end = performance.now() + warmMs;
    sizes[name] = size(run, sampleMs);
    while (performance.now() < end) run(sizes[name]);
    sizes[name] = size(run, sampleMs);
  }
  const out = Object.fromEntries(names.map((n) => [n, []]));
  const round = (r) => {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length];
      const t = cells[name](sizes[name]);
      if (t < 0) throw new Error(`${name}: a native loop reported a failed call`);
      out[name].push(t / sizes[name]);
    }
  };
  if (!between) {
    for (let r = 0; r < rounds; r++) round(r);
    return out;
  }
  return (async () => {
    for (let r = 0; r < rounds; r++) {
      round(r);
      await between(r);
    }
    return out;
  })();
}

/** A cell timing an asynchronous op() (awaited one at a time); op resolves to something with a length. */
export function asyncCell(op) {
  return async (n) => {
    let s = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) s += (await op()).length;
    const t = process.hrtime.bigint() - t0;
    sink += s;
    return Number(t);
  };
}

/** A cell keeping `flight` calls of op() in flight at once (n calls in all, the last ones drained). */
export function inFlightCell(op, flight) {
  return async (n) => {
    let left = n;
    let s = 0;
    const worker = async () => {
      while (left-- > 0) s += (await op()).length;
    };
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: Math.min(flight, n) }, worker));
    const t = process.hrtime.bigint() - t0;
    sink += s;
    return Number(t);
  };
}

/** size() for cells that may return a promise. */
async function sizeAsync(run, ms) {
  let n = 1;
  for (;;) {
    const t = await run(n);
    if (t < 0) throw new Error('a native loop reported a failed call');
    if (t >= ms * 1e6 * 0.25 || n >= 1 << 26) return Math.max(1, Math.round((n * ms * 1e6) / Math.max(t, 1)));
    n *= 4;
  }
}

/**
 * sampleInterleaved for cells some of which are asynchronous (run(n) returns a promise of the
 * nanoseconds): the same warm-up, sizing and rotating rounds, each sample awaited before the next.
 */
export async function sampleInterleavedAsync(cells, { rounds = ROUNDS, sampleMs = SAMPLE_MS, warmMs = WARM_MS } = {}) {
  const names = Object.keys(cells);
  const sizes = {};
  for (const name of names) {
    const run = cells[name];
    const end = performance.now() + warmMs;
    sizes[name] = await sizeAsync(run, sampleMs);
    while (performance.now() < end) await run(sizes[name]);
    sizes[name] = await sizeAsync(run, sampleMs);
  }
  const out = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length];
      const t = await cells[name](sizes[name]);
      if (t < 0) throw new Error(`${name}: a native loop reported a failed call`);
      out[name].push(t / sizes[name]);
    }
  }
  return out;
}

/** A long-lived child that answers each line written to its stdin with one JSON line. */
export function lineServer(child) {
  let buf = '';
  const waiting = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    buf += d;
    for (let nl; (nl = buf.indexOf('\n')) >= 0; ) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      waiting.shift()?.resolve(JSON.parse(line));
    }
  });
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`native side exited (${code})`));
  });
  return {
    ask: () => new Promise((resolve, reject) => {
      waiting.push({ resolve, reject });
      child.stdin.write('\n');
    }),
    close: () => child.stdin.end(),
  };
}

/** p-quantile (0..1) by linear interpolation. */
export function quantile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * p;
  const lo = Math.floor(at);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (at - lo);
}
export const median = (xs) => quantile(xs, 0.5);
/** median [p10–p90] of a sample set, for the printed tables. */
export const spread = (xs, f = (v) => v.toFixed(0)) => `${f(median(xs))} [${f(quantile(xs, 0.1))}–${f(quantile(xs, 0.9))}]`;
/** The median over rounds of f(a[i], b[i]): a per-round ratio or difference. */
export const perRound = (a, b, f) => median(a.map((x, i) => f(x, b[i])));

/** The native reference loops (bench/native/loops/pkcs11-loops.c), called through koffi. */
export function nativeLoops() {
  const path = new URL('../../dist/native/bench/libpkcs11-loops.so', import.meta.url).pathname;
  let lib;
  try {
    lib = koffi.load(path);
  } catch (e) {
    throw new Error(`${path}: ${e.message} — run 'make native'`);
  }
  const F = 'uintptr_t';
  return {
    getpid: lib.func('double loop_getpid(long n)'),
    getInfo: lib.func('loop_get_info', 'double', [F, 'long']),
    getSlotList: lib.func('loop_get_slot_list', 'double', [F, 'uint8_t', 'long']),
    getTokenInfo: lib.func('loop_get_token_info', 'double', [F, 'unsigned long', 'long']),
    getSlotInfo: lib.func('loop_get_slot_info', 'double', [F, 'unsigned long', 'long']),
    random: lib.func('loop_random', 'double', [F, 'unsigned long', 'unsigned long', 'long']),
    randomThreads: lib.func('loop_random_threads', 'double', [F, 'unsigned long', 'unsigned long', 'long', 'int']),
    digest: lib.func('loop_digest', 'double', [F, 'unsigned long', 'long']),
    signEcdsa: lib.func('loop_sign_ecdsa', 'double', [F, 'unsigned long', 'unsigned long', 'long']),
    catEcho: lib.func('double loop_cat_echo(long n, int sockets)'),
  };
}

/** libc getpid() through koffi: the JavaScript side of the syscall control. */
export function koffiGetpid() {
  return koffi.load('libc.so.6').func('int getpid(void)');
}
