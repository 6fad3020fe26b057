// @ts-check
// Waiting for a condition by polling it (never a fixed sleep standing in for a condition).

/**
 * @param {number} ms
 * @returns {Promise<void>}
 */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `fn` every `intervalMs` until it returns a truthy value, and resolves with that value; resolves
 * with `undefined` once `timeoutMs` has passed (after one last call). An error thrown by `fn` rejects.
 * @template T
 * @param {() => T | undefined | null | false | Promise<T | undefined | null | false>} fn
 * @param {{ timeoutMs: number, intervalMs?: number }} opts
 * @returns {Promise<T | undefined>}
 */
export async function poll(fn, { timeoutMs, intervalMs = 100 }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= deadline) return undefined;
    await sleep(intervalMs);
  }
}

/**
 * Like poll(), but rejects with "timed out after N ms waiting for <what>" instead of resolving with
 * `undefined`.
 * @template T
 * @param {() => T | undefined | null | false | Promise<T | undefined | null | false>} fn
 * @param {number} timeoutMs
 * @param {string} what what is awaited, for the error message
 * @param {number} [intervalMs]
 * @returns {Promise<T>}
 */
export async function waitFor(fn, timeoutMs, what, intervalMs = 100) {
  const v = await poll(fn, { timeoutMs, intervalMs });
  if (!v) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  return v;
}
