// Errors of looking a module up by name. The registry is the lowest layer that knows names, so the
// in-thread openModule() and the service both throw this one class.

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
    super(`no module named '${module}' is configured for ${scope}; configured: ${available.length ? available.join(', ') : '(none)'}`);
  }
}
