// Durations given on the command line: a whole number with a unit (500ms, 10s, 2m, 1h), or a
// bare number of milliseconds; 0 is allowed (the caller says what it means). Bounded by the
// longest delay a Node timer keeps (a longer one would fire at once).
import { MAX_TIMER_MS } from '../server/limits.js';
import { CliError, EXIT } from './exit-codes.js';

const UNIT_MS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of `text` given to `flag`; a usage error naming both when it is not a duration. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d{1,16})(ms|s|m|h)?$/.exec(text);
  if (!m) throw new CliError(EXIT.USAGE, `${flag}: '${text}' is not a duration like 500ms, 10s or 2m (a bare number is milliseconds)`);
  const ms = Number(m[1]) * UNIT_MS[m[2] ?? '']!;
  if (ms > MAX_TIMER_MS) throw new CliError(EXIT.USAGE, `${flag}: '${text}' is longer than the longest timer, ${MAX_TIMER_MS} ms (about 24 days)`);
  return ms;
}
