// Resolving the options of the URI API into the numbers the core takes.
import { UriType, type UriTypeName, type UriTypeOption } from './types.js';
import { echo } from '../wasm/echo.js';

/** UriType bits from a name ('ANY', 'object-on-token', …) or a number; default ANY. */
export function resolveUriType(type: UriTypeOption | undefined): number {
  if (type === undefined) return UriType.ANY;
  if (typeof type === 'number') {
    if (!Number.isInteger(type) || type < 0 || type > 0xffffffff)
      throw new TypeError(`p11kit-wasm: URI type ${type} is not a 32-bit unsigned integer`);
    return type;
  }
  if (typeof type !== 'string') throw new TypeError(`p11kit-wasm: a URI type is a name or a number, not ${echo(type)}`);
  const key = type.toUpperCase().replace(/-/g, '_') as UriTypeName;
  if (!Object.hasOwn(UriType, key))
    throw new TypeError(`p11kit-wasm: unknown URI type ${echo(type)} (one of ${Object.keys(UriType).join(', ')})`);
  return UriType[key];
}

/**
 * p11-kit writes lower-case hex when P11_KIT_URI_LOWERCASE is set and non-empty. Read on every
 * call, not cached: a change to process.env must show at once, as it does in p11-kit, and no
 * cheaper read sees every change (each form of the lookup costs ~0.2 µs, all of it Node's env
 * interceptor; the URI bench passes the option, so its figures do not include it).
 */
export function resolveLowercase(lowercase: boolean | undefined): boolean {
  if (lowercase !== undefined) return lowercase;
  return !!globalThis.process?.env?.P11_KIT_URI_LOWERCASE;
}
