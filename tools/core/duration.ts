/** Durations as users write them on command lines and in machine files. */

/** `500ms`, `20s`, `2m`, or a bare number of seconds → milliseconds; throws with the reason. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (m === null) throw new Error(`not a duration: '${text}' (e.g. 500ms, 20s, 2m)`);
  const n = Number(m[1]);
  const ms = m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000;
  if (ms <= 0) throw new Error(`a deadline must be positive: '${text}'`);
  return Math.round(ms);
}
