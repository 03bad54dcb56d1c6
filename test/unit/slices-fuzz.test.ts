// Adversarial, seeded property test of cutting a file into slices (workers/slices.ts, pipeline/slice.ts):
// random CSV files full of awkward things (quoted line ends, CRLF, "" escapes, multibyte UTF-8 around the
// cuts, blank lines, rows of the wrong width, comments, a BOM, a lone CR, NUL bytes, an unclosed quote at
// the end, no final newline...) through several pipelines, each run twice: whole (processFile's own
// producer, as one thread runs it) and cut by sliceProducer at tiny slice sizes (the configuration allows
// any sliceBytes >= 1) with a fake pool that runs its slices in this thread, through the workers' data
// protocol (structured clone). The outputs, the rejects file, the counts and the outcome must be the same;
// a cut file that throws RunWhole must leave nothing behind (the runner then runs it whole). Deterministic:
// fixed seeds; a mismatch prints its seed, its variant and its input, shrunk.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type SluiceConfig } from '../../src/config/load.js';
import { fastPathApplies } from '../../src/csv/fast-reader.js';
import { outputDriver } from '../../src/outputs/registry.js';
import { type FileReport, type PipelineSettings, processFile, RunWhole } from '../../src/pipeline/process-file.js';
import { type PerFile, pipelineSettings, settingsForFile } from '../../src/pipeline/settings.js';
import { stepsAreRowLocal } from '../../src/pipeline/steps.js';
import { Lane } from '../../src/workers/lane.js';
import { sliceProducer } from '../../src/workers/slices.js';
import { fakePool } from './fake-pool.js';

/** The fake pools build nothing from it. */
const FAKE_CONFIG = {} as SluiceConfig;

// ---------------------------------------------------------------------------------------------------------
// random numbers

type Rnd = {
  /** An integer in [0, n). */
  int(n: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  pick<T>(xs: readonly T[]): T;
};

/** mulberry32: small, fast, seeded. */
function prng(seed: number): Rnd {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (n) => Math.floor(next() * n),
    chance: (p) => next() < p,
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
  };
}

// ---------------------------------------------------------------------------------------------------------
// pipelines

interface Variant {
  name: string;
  /** The pipeline as configured (input, steps, output). */
  pipeline: Record<string, unknown>;
  /** The file's delimiter (per file, as the daemon gives it). */
  delimiter?: string;
  /** The fewest columns the steps need. */
  minCols: number;
  /** Comment lines start with this. */
  comment?: string;
  /** input.header false: the file has no header line. */
  noHeader?: boolean;
}

const NAMES = ['id', 'name', 'amount', 'note', 'ü€😀'];

const VARIANTS: Variant[] = [
  { name: 'plain', pipeline: { steps: [], output: { format: 'csv' } }, minCols: 1 },
  {
    name: 'dropNulls+filter',
    pipeline: { steps: [{ dropNulls: {} }, { filter: { column: 'name', op: 'ne', value: 'drop' } }], output: { format: 'csv' } },
    minCols: 3,
  },
  {
    name: 'cast->ndjson',
    pipeline: { steps: [{ dropNulls: { how: 'all' } }, { cast: { amount: 'integer' } }], output: { format: 'ndjson' } },
    minCols: 3,
  },
  {
    name: 'rename+select+addColumn, crlf quote all',
    pipeline: {
      steps: [{ rename: { name: 'nom' } }, { select: ['amount', 'nom', 'id'] }, { addColumn: { name: 'src', source: 'fileName' } }],
      output: { format: 'csv', lineEnding: 'crlf', quote: 'all' },
    },
    minCols: 3,
  },
  {
    name: 'comments, semicolons, dropNulls on a column',
    pipeline: { input: { comment: '#' }, steps: [{ dropNulls: { columns: ['amount'] } }], output: { format: 'csv' } },
    delimiter: ';',
    minCols: 3,
    comment: '#',
  },
  {
    name: 'no header line, tabs',
    pipeline: { input: { header: false, columns: NAMES.slice(0, 3) }, steps: [{ dropNulls: { how: 'all' } }], output: { format: 'csv' } },
    delimiter: '\t',
    minCols: 3,
    noHeader: true,
  },
  {
    name: 'columns replace the header',
    pipeline: { input: { columns: ['A', 'B', 'C'] }, steps: [{ dropNulls: { columns: ['B'] } }], output: { format: 'ndjson' } },
    minCols: 3,
  },
  {
    name: 'cast onError null, no output header',
    pipeline: { steps: [{ cast: { amount: { type: 'number', onError: 'null' } } }], output: { format: 'csv', header: false } },
    minCols: 3,
  },
];

// ---------------------------------------------------------------------------------------------------------
// inputs

interface GenOptions {
  delimiter: string;
  cols: number;
  rows: number;
  comment?: string;
  noHeader?: boolean;
  /** Allow what makes the cut refuse (lone CR) or the whole file fail (NUL, unclosed quote at the end). */
  hostile: boolean;
  /** How long the long fields get. */
  longField: number;
  /** How often a field or an odd line that would hold a quoted line end keeps it (0: never, 1: always). */
  multiline: number;
  /** How often a line is odd (blank, the wrong width, bad quotes...) instead of a row. */
  odd: number;
}

const MULTI = ['é', 'ß', '€', '中', '😀', '𝄞', 'ü€😀', 'ÿ'];

function field(r: Rnd, o: GenOptions, col: number, lineEnd: string): string {
  const d = o.delimiter;
  const k = r.int(100);
  if (col === 2 && k < 25) return r.pick(['1', '-7', '42', '3.5', 'x', '', ' ', '007', '1e3', '9007199254740993']);
  if (col === 1 && k < 4) return 'drop';
  if (k < 14) return '';
  if (k < 30) return `w${r.int(1000)}`;
  if (k < 42) {
    let s = '';
    for (let i = r.int(6); i >= 0; i--) s += r.chance(0.5) ? r.pick(MULTI) : String.fromCharCode(97 + r.int(26));
    return s;
  }
  if (k < 50) return `"a${d}b${r.pick(MULTI)}"`;
  if (k < 57) return `"say ""hi""${r.chance(0.3) ? d : ''}"`;
  // a quoted line end, where the case wants them (a cut inside one makes the file run whole)
  if (((k >= 57 && k < 69) || (k >= 77 && k < 79)) && !r.chance(o.multiline)) return `"q${d}${r.pick(MULTI)}"`;
  if (k < 65) return `"two${r.chance(0.5) ? '\n' : '\r\n'}lines${r.pick(MULTI)}"`;
  if (k < 69) return `"${r.pick(MULTI)}\n\n${r.pick(MULTI)}${lineEnd}end"`;
  if (k < 73) return `"plain"`; // quoted without need
  if (k < 75) return '""';
  if (k < 77) return 'NA';
  if (k < 79) return `"${'\n'.repeat(1 + r.int(3))}"`; // quoted line ends only
  if (k < 81) return `"${d}${d}"`;
  if (k < 83) return '#not-a-comment';
  if (k < 85) {
    // long, with multibyte characters scattered through it (and a quoted line end sometimes)
    let s = '';
    const n = 1 + r.int(o.longField);
    while (s.length < n) s += r.chance(0.2) ? r.pick(MULTI) : 'abcdefghij'.slice(0, 1 + r.int(10));
    return r.chance(0.4) && r.chance(o.multiline) ? `"${s}\n${s.slice(0, 7)}"` : s;
  }
  if (k < 90) return `${r.pick(MULTI)}${r.pick(MULTI)}`;
  return `v${col}`;
}

/** What can go wrong in a line, in place of a regular row. */
function oddLine(r: Rnd, o: GenOptions, lineEnd: string): string | Buffer {
  const d = o.delimiter;
  const k = r.int(100);
  if (k < 15) return ''; // a blank line (its line end follows)
  if (k < 20) return lineEnd; // two blank lines
  if (k < 35) return Array.from({ length: o.cols + (r.chance(0.5) ? 1 : -1) }, (_, i) => `s${i}`).join(d); // wrong width
  if (k < 40) return ' '; // one field, a space
  if (k < 47) return `w${d}a"b${d}c`; // a quote in an unquoted field
  if (k < 54) return `"ab"c${d}x${d}y`; // text after a closing quote
  // bad quotes on one line, where the case wants no quoted line ends
  if ((k < 62 || (k >= 84 && k < 88)) && !r.chance(o.multiline)) return `"ab${d}"${d}"c"d${d}e`;
  if (k < 58) return `"multi\nline"x${d}1${d}2`; // text after a closing quote, the record across lines
  if (k < 62) return `"open\n${d}1`; // a quote that closes lines later (or never)
  if (k < 68) return Buffer.concat([Buffer.from(`bad${d}`), Buffer.from([0xff]), Buffer.from(`${d}z`)]); // invalid UTF-8
  if (k < 72) return Buffer.concat([Buffer.from(`trunc${d}x${d}`), Buffer.from([0xe2, 0x82])]); // a multibyte char cut short, then the line end
  if (k < 76) return Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from(`bom${d}1${d}2`)]); // a BOM mid-file
  if (k < 80) return o.comment === undefined ? `#c${d}1${d}2` : `${o.comment} a comment with "a quote${d}`;
  if (k < 84) return `${d.repeat(o.cols - 1)}`; // every field empty
  if (k < 88) return `"${d}"${d}"${lineEnd}"${d}"""`;
  if (o.hostile && k < 90) return `lone${d}\rcr${d}x`; // a lone CR: the cut refuses
  if (o.hostile && k < 91) return Buffer.from(`nul${d}\u0000${d}x`); // a NUL byte mid-file
  return Array.from({ length: o.cols }, (_, i) => `o${i}`).join(d);
}

function generate(r: Rnd, o: GenOptions): Buffer {
  const parts: Buffer[] = [];
  const eol = (): string => (r.chance(0.35) ? '\r\n' : '\n');
  if (r.chance(0.15)) parts.push(Buffer.from([0xef, 0xbb, 0xbf]));
  // what a whole run refuses at its first chunk, a line or two in: JSON, or a NUL byte
  if (o.hostile && r.chance(0.03)) parts.push(Buffer.from(r.pick(['[\n{"a": 1}\n', '{\n"a": 1\n', `x${o.delimiter}\u0000\n`])));
  if (r.chance(0.05)) parts.push(Buffer.from(r.pick(['\n', '\r\n', '\n\n'])));
  if (o.comment !== undefined && r.chance(0.3)) parts.push(Buffer.from(`${o.comment} leading comment\n`));
  if (!o.noHeader) {
    const names = NAMES.slice(0, o.cols).map((n) => (r.chance(0.15) ? `"${n}"` : n));
    // a header across lines (a quoted line end in a name), or naming a column twice
    if (o.hostile && r.chance(0.05)) names[names.length - 1] = `"x\ny"`;
    if (o.hostile && o.cols > 1 && r.chance(0.03)) names[1] = names[0]!;
    parts.push(Buffer.from(names.join(o.delimiter) + eol()));
  }
  for (let i = 0; i < o.rows; i++) {
    const lineEnd = eol();
    if (r.chance(o.odd)) {
      const odd = oddLine(r, o, lineEnd);
      parts.push(typeof odd === 'string' ? Buffer.from(odd) : odd, Buffer.from(lineEnd));
      continue;
    }
    const fields = Array.from({ length: o.cols }, (_, c) => field(r, o, c, lineEnd));
    parts.push(Buffer.from(fields.join(o.delimiter) + lineEnd));
  }
  let buf = Buffer.concat(parts);
  const end = r.int(100);
  if (end < 20) {
    // no newline at the end
    while (buf.length > 0 && (buf[buf.length - 1] === 10 || buf[buf.length - 1] === 13)) buf = buf.subarray(0, buf.length - 1);
  } else if (end < 25) buf = Buffer.concat([buf, Buffer.from(r.pick(['\n', '\r\n\r\n', '\n\n\n']))]);
  else if (end < 30 && o.hostile) buf = Buffer.concat([buf, Buffer.from(`"unclosed${o.delimiter}${r.pick(MULTI)}\nmore\n`)]);
  else if (end < 32 && o.hostile) buf = Buffer.concat([buf, Buffer.from('\r')]);
  return buf;
}

// ---------------------------------------------------------------------------------------------------------
// the two runs

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-slices-fuzz-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

interface Side {
  out: string;
  rejects: string;
  settings: PipelineSettings;
}

interface Built {
  variant: Variant;
  whole: Side;
  cut: Side;
  per: PerFile;
}

async function build(v: Variant, k: number, chunkSize: number | undefined): Promise<Built> {
  const dir = join(root, `v${k}`);
  await mkdir(dir, { recursive: true });
  const configPath = join(dir, 'sluice.json');
  await writeFile(configPath, JSON.stringify({ pipelines: [{ name: 'default', ...v.pipeline }] }));
  const per: PerFile = { tempTag: `t${k}`, claimId: `t${k}`, delimiter: v.delimiter, format: 'csv' };
  const side = async (which: string): Promise<Side> => {
    const out = join(dir, `${which}-out`);
    const rejects = join(dir, `${which}-rejects`);
    await mkdir(out, { recursive: true });
    await mkdir(rejects, { recursive: true });
    const cfg = loadConfig({ configPath, cwd: dir, env: {}, flags: { watch: dir, out, rejects, archive: dir, failed: dir } });
    const p = cfg.pipelines[0]!;
    // the runner would cut files of this pipeline (runner.ts cuttable), else the test tests nothing real
    expect(stepsAreRowLocal(p.steps), v.name).toBe(true);
    expect(outputDriver(p.output).sliceable?.(p.output), v.name).toBe(true);
    const s = settingsForFile(await pipelineSettings(cfg, p, 0), per);
    expect(fastPathApplies({ ...s.csv, encoding: 'utf8' }), v.name).toBe(true);
    const settings: PipelineSettings = { ...s, fsync: false, stageOnly: false, ...(chunkSize === undefined ? {} : { chunkSize }) };
    return { out, rejects, settings };
  };
  return { variant: v, whole: await side('whole'), cut: await side('cut'), per };
}

interface Outcome {
  report: Record<string, unknown>;
  files: Record<string, string>;
}

/** What a run leaves: its report's comparable part and every file in its folders (hex). */
async function outcomeOf(r: FileReport, side: Side): Promise<Outcome> {
  const files: Record<string, string> = {};
  for (const [k, dir] of [
    ['out', side.out],
    ['rejects', side.rejects],
  ] as const) {
    for (const f of (await readdir(dir)).sort()) files[`${k}/${f}`] = (await readFile(join(dir, f))).toString('hex');
  }
  return {
    report: {
      outcome: r.outcome,
      error: r.error?.code,
      errorLine: r.error?.line,
      rows: r.rows,
      rejectCodes: r.rejectCodes,
      // a failed file's comments are those read before it failed: a slice's are lost with it (only in its log line)
      comments: r.outcome === 'failed' ? undefined : r.comments,
      extraKeys: r.extraKeys,
      sha256: r.sha256,
      // a failed file's bytes read are how far it got: the cut file's scan reads ahead of its slices
      bytesRead: r.outcome === 'failed' ? undefined : r.bytesRead,
      bytesWritten: r.bytesWritten,
    },
    files,
  };
}

async function clear(side: Side): Promise<void> {
  for (const dir of [side.out, side.rejects]) for (const f of await readdir(dir)) await rm(join(dir, f), { force: true });
}

type Path = 'cut' | 'whole';

interface CaseResult {
  path: Path;
  why?: string;
  slices?: number;
  /** Set when the cut file's outcome differs from the whole run's. */
  mismatch?: string;
}

let caseNo = 0;

/** Runs `input` whole and cut into slices of `sliceBytes`; compares. */
async function check(b: Built, input: Buffer, sliceBytes: number): Promise<CaseResult> {
  const name = `in${caseNo++}.csv`;
  const path = join(root, name);
  await writeFile(path, input);
  try {
    const whole = await outcomeOf(await processFile(path, name, b.whole.settings), b.whole);
    await clear(b.whole);
    const produce = sliceProducer({
      pool: fakePool(() => b.cut.settings, { ready: true }).pool,
      lane: new Lane(true),
      gen: 1,
      config: FAKE_CONFIG,
      pipeline: 0,
      per: b.per,
      sliceBytes,
      onEvent: () => undefined,
    });
    let report: FileReport;
    try {
      report = await processFile(path, name, b.cut.settings, {}, undefined, produce);
    } catch (err) {
      if (!(err instanceof RunWhole)) throw err;
      // nothing of the attempt may be left for the whole run that follows (runner.ts)
      const left = [...(await readdir(b.cut.out)), ...(await readdir(b.cut.rejects))];
      await clear(b.cut);
      return { path: 'whole', why: err.why, ...(left.length > 0 ? { mismatch: `a RunWhole left files behind: ${left.join(', ')}` } : {}) };
    }
    const cut = await outcomeOf(report, b.cut);
    await clear(b.cut);
    const diff = differences(whole, cut);
    return { path: 'cut', ...(report.slices === undefined ? {} : { slices: report.slices }), ...(diff === undefined ? {} : { mismatch: diff }) };
  } finally {
    await rm(path, { force: true });
  }
}

function differences(whole: Outcome, cut: Outcome): string | undefined {
  const out: string[] = [];
  const a = JSON.stringify(whole.report);
  const c = JSON.stringify(cut.report);
  if (a !== c) out.push(`report: whole ${a}\n          cut ${c}`);
  const names = new Set([...Object.keys(whole.files), ...Object.keys(cut.files)]);
  for (const n of [...names].sort()) {
    const x = whole.files[n];
    const y = cut.files[n];
    if (x === y) continue;
    if (x === undefined || y === undefined) {
      out.push(`${n}: only in the ${x === undefined ? 'cut' : 'whole'} run`);
      continue;
    }
    const wx = Buffer.from(x, 'hex');
    const wy = Buffer.from(y, 'hex');
    let at = 0;
    while (at < wx.length && at < wy.length && wx[at] === wy[at]) at++;
    out.push(
      `${n}: differs at byte ${at} (whole ${wx.length} bytes, cut ${wy.length}):\n  whole ${JSON.stringify(wx.subarray(Math.max(0, at - 40), at + 60).toString('latin1'))}\n  cut   ${JSON.stringify(wy.subarray(Math.max(0, at - 40), at + 60).toString('latin1'))}`,
    );
  }
  return out.length === 0 ? undefined : out.join('\n');
}

/**
 * Shrinks a failing input: drops lines, then single bytes, while it still fails (greedy, bounded). Only
 * runs on a failure, to make the report readable.
 */
async function shrink(b: Built, input: Buffer, sliceBytes: number, budget = 400): Promise<{ input: Buffer; sliceBytes: number }> {
  let best = input;
  let bestSlice = sliceBytes;
  const fails = async (x: Buffer, s: number): Promise<boolean> => {
    if (budget-- <= 0) return false;
    return (await check(b, x, s)).mismatch !== undefined;
  };
  const linesOf = (x: Buffer): Buffer[] => {
    const ls: Buffer[] = [];
    let at = 0;
    for (let i = x.indexOf(10); i !== -1; i = x.indexOf(10, i + 1)) {
      ls.push(x.subarray(at, i + 1));
      at = i + 1;
    }
    if (at < x.length) ls.push(x.subarray(at));
    return ls;
  };
  for (let progress = true; progress && budget > 0; ) {
    progress = false;
    const ls = linesOf(best);
    for (let chunk = Math.max(1, ls.length >> 1); chunk >= 1 && budget > 0; chunk >>= 1) {
      for (let i = 0; i + chunk <= ls.length && budget > 0; ) {
        const candidate = Buffer.concat([...ls.slice(0, i), ...ls.slice(i + chunk)]);
        if (candidate.length > 0 && (await fails(candidate, bestSlice))) {
          best = candidate;
          ls.splice(i, chunk);
          progress = true;
        } else i += chunk;
      }
    }
    for (const s of [1, 2, 3, 4, 8, 16, 32].filter((x) => x < bestSlice)) {
      if (await fails(best, s)) {
        bestSlice = s;
        progress = true;
        break;
      }
    }
  }
  for (let i = 0; i < best.length && budget > 0; ) {
    const candidate = Buffer.concat([best.subarray(0, i), best.subarray(i + 1)]);
    if (candidate.length > 0 && (await fails(candidate, bestSlice))) best = candidate;
    else i++;
  }
  return { input: best, sliceBytes: bestSlice };
}

// ---------------------------------------------------------------------------------------------------------
// the properties

interface Tally {
  cases: number;
  cut: number;
  whole: Record<string, number>;
  slices: number;
  mismatches: string[];
}

function newTally(): Tally {
  return { cases: 0, cut: 0, whole: {}, slices: 0, mismatches: [] };
}

/** Runs the cases of `seeds`, prints what paths they took, asserts that none differs; returns the tally. */
async function fuzz(
  label: string,
  seeds: readonly number[],
  shape: (r: Rnd, v: Variant) => { gen: GenOptions; sliceBytes: number },
  chunkSize?: (r: Rnd) => number | undefined,
): Promise<Tally> {
  const tally = newTally();
  const built = new Map<string, Built>();
  for (const seed of seeds) {
    const r = prng(seed);
    const vk = r.int(VARIANTS.length);
    const v = VARIANTS[vk]!;
    const chunk = chunkSize?.(r);
    const key = `${vk}/${chunk ?? ''}`;
    let b = built.get(key);
    if (b === undefined) {
      b = await build(v, built.size + 1000 * (label.length + seeds[0]!), chunk);
      built.set(key, b);
    }
    const { gen, sliceBytes } = shape(r, v);
    const input = generate(r, gen);
    const res = await check(b, input, sliceBytes);
    tally.cases++;
    if (res.path === 'cut') {
      tally.cut++;
      tally.slices += res.slices ?? 0;
    } else tally.whole[res.why!] = (tally.whole[res.why!] ?? 0) + 1;
    if (res.mismatch !== undefined) {
      const small = input.length <= 4096 && tally.mismatches.length < 3 ? await shrink(b, input, sliceBytes) : { input, sliceBytes };
      const again = await check(b, small.input, small.sliceBytes);
      tally.mismatches.push(
        [
          `${label} seed ${seed}: variant "${v.name}" (delimiter ${JSON.stringify(v.delimiter ?? ',')}), chunkSize ${chunk ?? 'default'}, sliceBytes ${sliceBytes}, ${input.length} bytes`,
          res.mismatch,
          `shrunk to sliceBytes ${small.sliceBytes}, ${small.input.length} bytes: ${JSON.stringify(small.input.toString('latin1'))}`,
          `  hex ${small.input.length <= 512 ? small.input.toString('hex') : '(long)'}`,
          again.mismatch ?? '(the shrunk input no longer fails)',
        ].join('\n'),
      );
    }
  }
  console.log(summary(label, tally));
  expect(tally.mismatches, tally.mismatches.join('\n\n')).toEqual([]);
  return tally;
}

function summary(label: string, t: Tally): string {
  return `${label}: ${t.cases} cases, ${t.cut} cut (${t.slices} slices), ${t.cases - t.cut} run whole ${JSON.stringify(t.whole)}, ${t.mismatches.length} mismatches`;
}

/** SLUICE_FUZZ_SCALE=10 runs ten times the cases (more seeds, the same first ones); default 1, some 25 s. */
const SCALE = Math.max(1, Number(process.env.SLUICE_FUZZ_SCALE ?? 1) || 1);
const range = (from: number, n: number): number[] => Array.from({ length: Math.round(n * SCALE) }, (_, i) => from + i);

/** The shape of a small file: its mix of rows chosen per case, so that some are never cut and some always are. */
function smallShape(hostile: number, longField: number) {
  return (r: Rnd, v: Variant): GenOptions => ({
    delimiter: v.delimiter ?? ',',
    cols: Math.max(v.minCols, 1 + r.int(5)),
    rows: r.chance(0.04) ? 0 : 1 + r.int(r.chance(0.5) ? 12 : 80),
    hostile: r.chance(hostile),
    longField,
    multiline: r.pick([0, 0, 0, 0.02, 0.3, 1]),
    odd: r.pick([0, 0.05, 0.15, 0.4]),
    ...(v.comment === undefined ? {} : { comment: v.comment }),
    ...(v.noHeader === true ? { noHeader: true } : {}),
  });
}

describe('a file cut into slices gives what one whole run gives (seeded fuzz)', () => {
  it(
    'small hostile files, slices of 1 to 300 bytes',
    async () => {
      const shape = smallShape(0.4, 40);
      const t = await fuzz('small', range(1, 420), (r, v) => ({ gen: shape(r, v), sliceBytes: r.chance(0.3) ? 1 + r.int(4) : 1 + r.int(300) }));
      expect(t.cut).toBeGreaterThan(t.cases / 3);
    },
    60_000 * SCALE,
  );

  it(
    'small clean files (no lone CR, NUL or open quote at the end), in small read chunks too',
    async () => {
      const shape = smallShape(0, 300);
      const t = await fuzz(
        'clean',
        range(10_001, 340),
        (r, v) => ({ gen: shape(r, v), sliceBytes: 1 + r.int(200) }),
        (r) => (r.chance(0.6) ? undefined : r.pick([16, 100, 1000, 4096]) + r.int(7)),
      );
      expect(t.cut).toBeGreaterThan(t.cases / 3);
    },
    60_000 * SCALE,
  );

  it(
    'files of 250-700 KiB (the runner cuts from 256 KiB), slices of 1-64 KiB',
    async () => {
      const t = await fuzz('large', range(50_001, 16), (r, v) => ({
        gen: {
          delimiter: v.delimiter ?? ',',
          cols: Math.max(v.minCols, 2 + r.int(4)),
          rows: 6000 + r.int(8000),
          hostile: r.chance(0.2),
          longField: 2000,
          multiline: r.pick([0, 0, 0.0005]),
          odd: r.pick([0.001, 0.01, 0.1]),
          ...(v.comment === undefined ? {} : { comment: v.comment }),
          ...(v.noHeader === true ? { noHeader: true } : {}),
        },
        sliceBytes: r.pick([1024, 4096, 16 * 1024, 40 * 1024, 64 * 1024]) + r.int(3),
      }));
      expect(t.cut).toBeGreaterThan(0);
    },
    60_000 * SCALE,
  );
});

describe('a file cut into slices: cases the fuzz found, and the limits of the cut', () => {
  const builts = new Map<string, Built>();
  const builtFor = async (name: string): Promise<Built> => {
    let b = builts.get(name);
    if (b === undefined) {
      const k = VARIANTS.findIndex((v) => v.name === name);
      b = await build(VARIANTS[k]!, 90_000 + k, undefined);
      builts.set(name, b);
    }
    return b;
  };
  const rows = (n: number, line: (i: number) => string): string => Array.from({ length: n }, (_, i) => line(i)).join('');

  it.each([
    // blank lines or comment lines before the header, longer than a slice: the first slice held no header,
    // and the second read the header line as a row (a CAST_FAILED reject of "amount", one row too many)
    ['cast->ndjson', '\n\nid,name,amount\n1,a,2\n', 1],
    ['dropNulls+filter', '\nname,\n', 1],
    ['comments, semicolons, dropNulls on a column', '# a comment\n#another\nid;name;amount\n1;2;3\n', 4],
    ['comments, semicolons, dropNulls on a column', '\ufeff#\namount;name;id\nx;y;z\n', 1],
    // with input.columns the header is not looked for: a NUL byte past a first slice shorter than the first
    // chunk was never seen, where a whole run fails BINARY_FILE; JSON likewise (FORMAT_UNSUPPORTED)
    ['no header line, tabs', `${rows(40, (i) => `${i}\ta\tb\n`)}x\t\u0000\ty\n`, 64],
    ['no header line, tabs', '[\n{"a": 1}\n', 1],
    ['columns replace the header', `id,name,amount\n${rows(40, (i) => `${i},a,b\n`)}x,\u0000,y\n`, 64],
  ] as const)('%s: %j in slices of %i bytes', async (variant, text, sliceBytes) => {
    const res = await check(await builtFor(variant), Buffer.from(text), sliceBytes);
    expect(res.mismatch).toBeUndefined();
  });

  /** `head`, rows, then `at` exactly at byte `offset` (a pad row before it), then more rows. */
  const placed = (head: string, offset: number, at: string, tail: string): Buffer => {
    let body = head;
    for (let i = 0; body.length + 40 < offset; i++) body += `${i},row ${i},${i % 7}\n`;
    const pad = offset - body.length - 5;
    body += `p,${'q'.repeat(pad)},1\n`.slice(0, offset - body.length - 1);
    body += '\n';
    const buf = Buffer.from(`${body.slice(0, offset - 1)}${at}${tail}`);
    expect(buf.subarray(offset - 1, offset - 1 + at.length).toString()).toBe(at);
    return buf;
  };
  const MiB = 1024 * 1024;

  it.each([
    // the scan reads 1 MiB at a time: a CRLF across its chunks, a blank line or a lone CR just after one
    ['a CRLF across the scan chunks', '\r\n'],
    ['a blank line after the chunk', '\n\n'],
    ['a blank CRLF line after the chunk', '\n\r\n'],
    ['a lone CR ending the chunk', '\rx,y,z\n'],
  ])('%s (%j at 1 MiB)', async (_, at) => {
    const b = await builtFor('plain');
    const tail = `${rows(3000, (i) => `${i},t,${i}\r\n`)}`;
    for (const sliceBytes of [4096, MiB - 3, MiB]) {
      const res = await check(b, placed('id,name,amount\n', MiB, at, tail), sliceBytes);
      expect(res.mismatch, `sliceBytes ${sliceBytes}`).toBeUndefined();
      if (at.includes('\rx')) expect(res.why).toBe('it has a carriage return not followed by a line feed');
      else expect(res.path).toBe('cut');
    }
  });

  it('a header of more than 64 KiB (read from the first MiB), before it 70 KiB of comments', async () => {
    const b = await builtFor('comments, semicolons, dropNulls on a column');
    const names = Array.from({ length: 3000 }, (_, i) => `column_${'n'.repeat(20)}_${i}`);
    names[2] = 'amount';
    const text = `${rows(1000, (i) => `# comment ${i} ${'c'.repeat(60)}\n`)}${names.join(';')}\n${rows(200, (i) => `${Array.from({ length: 3000 }, (_, k) => (k === 2 && i % 3 === 0 ? '' : k)).join(';')}\n`)}`;
    const res = await check(b, Buffer.from(text), 16 * 1024);
    expect(res.mismatch).toBeUndefined();
    expect(res.path).toBe('cut');
  });

  it('a line over 1 MiB runs whole; so does a slice of 10,000 rejects; a file of 9,999 per slice is cut', async () => {
    const b = await builtFor('plain');
    const long = `id,name\n${rows(2000, (i) => `${i},x\n`)}1,${'y'.repeat(1100 * 1024)}\n${rows(2000, (i) => `${i},z\n`)}`;
    expect(await check(b, Buffer.from(long), 8192)).toEqual({ path: 'whole', why: 'it has lines of more than 1 MiB' });
    // 3 fields where the header has 2: every line a reject of 6 bytes
    const bad = `id,name\n${rows(30_000, () => '1,2,3\n')}`;
    expect(await check(b, Buffer.from(bad), 10_000 * 6)).toEqual({ path: 'whole', why: 'many of its rows are rejected' });
    // slices of 9,989, 9,990 and 9,021 rejects (the last slice may be up to half a slice longer)
    const res = await check(b, Buffer.from(`id,name\n${rows(29_000, () => '1,2,3\n')}`), 9_990 * 6);
    expect(res.mismatch).toBeUndefined();
    expect(res.path).toBe('cut');
  });
});
