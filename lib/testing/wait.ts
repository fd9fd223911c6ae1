// Polling with a deadline, for state the kernel or a peer reaches on its own time.

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** Give up after this long. Default 15,000 ms. */
  timeoutMs?: number;
  /** Pause between probes. Default 100 ms. */
  intervalMs?: number;
}

/**
 * Calls `probe` until it returns something other than `undefined` or `false`, and resolves
 * with that. A probe that throws counts as "not yet". After `timeoutMs` it rejects with an
 * Error naming `what` and the probe's last error.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitOptions = {},
): Promise<T> {
  const { timeoutMs = 15_000, intervalMs = 100 } = options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
