// A promise made through one shared executor, for the clients' hot paths: the executor hands
// its settling functions over in `settlers`, so a call creates no closure (or object) of its own.
// The caller takes them at once and clears them, so nothing here keeps a settled call alive.

export interface Settlers {
  resolve: ((v: unknown) => void) | undefined;
  reject: ((e: unknown) => void) | undefined;
}

export const settlers: Settlers = { resolve: undefined, reject: undefined };

function capture(resolve: (v: unknown) => void, reject: (e: unknown) => void): void {
  settlers.resolve = resolve;
  settlers.reject = reject;
}

/** A new promise; its settling functions are in `settlers` until the caller takes them. */
export const newPromise = (): Promise<unknown> => new Promise(capture);
