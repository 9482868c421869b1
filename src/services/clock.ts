// The time source of rules that count in windows (link password limits): one per process, replaceable in tests
// so a test can stand at a known point of a window instead of waiting for a fresh one.
export interface Clock {
  /** Milliseconds since the epoch, like Date.now(). */
  now(): number;
}

export const createSystemClock = (): Clock => ({ now: () => Date.now() });
