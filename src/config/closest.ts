// "Did you mean": the known name closest to a word typed (a command, a flag, a setting). No dependencies, so
// the command line's usage errors and --help load nothing else.

/** The name in `names` closest to `word` (edit distance at most 2, or a third of its length), if any. */
export function closest(word: string, names: readonly string[]): string | undefined {
  // the start of exactly one name (`sluice val`, --conc) means that name
  const starting = word.length >= 3 ? names.filter((n) => n.toLowerCase().startsWith(word.toLowerCase()) && n.length > word.length) : [];
  if (starting.length === 1) return starting[0];
  let best: string | undefined;
  // at most 2 edits (a third of the word for long ones), and fewer than the word's length
  let bestDistance = Math.min(Math.max(2, Math.floor(word.length / 3)) + 1, word.length);
  for (const n of names) {
    const d = editDistance(word.toLowerCase(), n.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [n, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
