/**
 * Polling with a deadline, the only way tests wait: `await waitFor(() => expect(x).toBe(1))`.
 * The last failure is rethrown when the deadline passes, so the test says what was wrong.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
