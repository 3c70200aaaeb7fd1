// Call tracing (p11-kit's `log-calls`): every typed call into a module — sync and async —
// is written to a sink with its arguments decoded, its result and its duration. PINs and
// secrets never reach the sink (format.ts). The raw fast path (module.raw) is not traced.
import { OPS } from '../bridge/ops.js';
import type { Pkcs11Module } from '../bridge/module.js';
import { rvName } from '../bridge/ckr.js';
import type { AttributeResult } from '../bridge/attributes.js';
import { argument, bytes, template, value } from './format.js';
import { PARAMS, SECRET_INPUTS, SECRET_PARAMS, SECRET_RESULTS } from './params.js';

export type TraceSink = (line: string) => void;

const traced = new WeakMap<Pkcs11Module, TraceSink>();
let globalSink: TraceSink | undefined;

/** Traces every module opened from now on in this isolate (the CLI's `trace`), or stops with undefined. */
export function setGlobalTrace(sink: TraceSink | undefined): void {
  globalSink = sink;
}

export function globalTrace(): TraceSink | undefined {
  return globalSink;
}

export const stderrSink: TraceSink = (line) => process.stderr.write(`${line}\n`);

function cName(method: string): string {
  return `C_${method[0].toUpperCase()}${method.slice(1)}`;
}

function describeArgs(method: string, args: unknown[]): string {
  const names = PARAMS[method] ?? [];
  return args
    .map((v, i) => {
      const name = names[i] ?? `arg${i}`;
      // Data handed to a call (to sign, digest, encrypt…) may be anyone's secret: lengths only.
      const secret = SECRET_PARAMS.has(name) || (name === 'data' && SECRET_INPUTS.has(method));
      if (name === 'data' && v instanceof Uint8Array) return `${name}=${bytes(v, true)}`;
      return argument(name, v, secret);
    })
    .join(', ');
}

function describeResult(method: string, result: unknown): string {
  if (result === undefined) return '';
  if (result instanceof Uint8Array) return ` -> ${bytes(result, SECRET_RESULTS.has(method))}`;
  if (method === 'getAttributeValue') return ` -> ${template(result as AttributeResult[])}`;
  return ` -> ${value(result)}`;
}

/** The CK_RV a successful typed call stands for: verify() answers CKR_SIGNATURE_INVALID as false. */
function okName(method: string, result: unknown): string {
  return (method === 'verify' || method === 'verifyFinal') && result === false ? 'CKR_SIGNATURE_INVALID' : 'CKR_OK';
}

function outcome(err: unknown): string {
  const rv = (err as { rv?: unknown } | null)?.rv;
  if (typeof rv === 'number') return rvName(rv);
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function micros(start: bigint): string {
  return `${(Number(process.hrtime.bigint() - start) / 1000).toFixed(1)} µs`;
}

/** Wraps the module's typed calls (this isolate's object) so that each one is traced to `sink`. */
export function traceModule(module: Pkcs11Module, sink: TraceSink = stderrSink): void {
  if (traced.has(module)) {
    traced.set(module, sink);
    return;
  }
  traced.set(module, sink);
  const emit = (line: string) => traced.get(module)?.(`p11kit trace: ${module.name}: ${line}`);
  const target = module as unknown as Record<string, (...a: unknown[]) => unknown>;
  const asyncTarget = module.async as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const method of [...Object.keys(OPS), 'initialize', 'finalize', 'getInfo', 'getSlotList', 'getTokenInfo']) {
    const inner = target[method];
    if (typeof inner === 'function' && !Object.prototype.hasOwnProperty.call(module, method)) {
      target[method] = function traceSync(this: unknown, ...args: unknown[]) {
        const head = `${cName(method)}(${describeArgs(method, args)})`;
        const start = process.hrtime.bigint();
        try {
          const result = inner.apply(module, args);
          emit(`${head} = ${okName(method, result)} [${micros(start)}]${describeResult(method, result)}`);
          return result;
        } catch (err) {
          emit(`${head} = ${outcome(err)} [${micros(start)}]`);
          throw err;
        }
      };
    }
    const innerAsync = asyncTarget[method];
    if (typeof innerAsync === 'function') {
      asyncTarget[method] = async (...args: unknown[]) => {
        const head = `${cName(method)}(${describeArgs(method, args)}) async`;
        const start = process.hrtime.bigint();
        try {
          const result = await innerAsync(...args);
          emit(`${head} = ${okName(method, result)} [${micros(start)}]${describeResult(method, result)}`);
          return result;
        } catch (err) {
          emit(`${head} = ${outcome(err)} [${micros(start)}]`);
          throw err;
        }
      };
    }
  }
}

export function isTraced(module: Pkcs11Module): boolean {
  return traced.has(module);
}
