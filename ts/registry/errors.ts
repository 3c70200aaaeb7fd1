// Errors of looking a module up by name. The registry is the lowest layer that knows names, so the
// in-thread openModule() and the service both throw this one class.
import { clip, echo } from '../wasm/echo.js';

/** How much of the configured names the message lists (the whole list is `available`). */
const LIST_CHARS = 1024;

/** A module name that is not configured (or not enabled for this program, or not offered to this client). */
export class UnknownModuleError extends Error {
  override readonly name = 'UnknownModuleError';
  constructor(
    readonly module: string,
    /** The names that could have been opened. */
    readonly available: readonly string[],
    /** Who the list is for: 'this program' in-thread, 'this client' through the service. */
    scope = 'this program',
  ) {
    super(`no module named ${echo(module)} is configured for ${scope}; configured: ${available.length ? clip(available.join(', '), LIST_CHARS) : '(none)'}`);
  }
}
