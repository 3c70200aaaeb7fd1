// A few lines of typed events instead of node:events, so that the client side of a service
// (supervisor, client) also runs where Node's modules are missing (an Electron renderer).
export class Emitter<E extends Record<string, unknown>> {
  private readonly listeners = new Map<keyof E, Set<(value: never) => void>>();

  on<K extends keyof E>(event: K, listener: (value: E[K]) => void): this {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (value: never) => void);
    return this;
  }

  off<K extends keyof E>(event: K, listener: (value: E[K]) => void): this {
    this.listeners.get(event)?.delete(listener as (value: never) => void);
    return this;
  }

  /** Listeners run in order; one that throws does not keep the others from running. */
  protected emit<K extends keyof E>(event: K, value: E[K]): void {
    for (const l of [...(this.listeners.get(event) ?? [])]) {
      try {
        (l as (value: E[K]) => void)(value);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
