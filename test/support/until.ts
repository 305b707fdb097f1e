/**
 * Polls `predicate` every `intervalMs` (default 50) until it holds; rejects with "timed out waiting for <what>"
 * after `timeoutMs`. Every wait in a test is bounded this way, never a fixed sleep.
 */
export async function until(
  predicate: () => boolean,
  timeoutMs: number,
  what: string,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
