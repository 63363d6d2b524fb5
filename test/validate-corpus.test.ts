/**
 * The corpus of broken and odd definitions: ganeti-os's verdict (validate, diagnose) must be
 * each release's own (Ganeti 3.0 and 3.1), word for word, on every one. The corpus is written
 * once and ganeti-os judges each directory once (its messages name the path, so every release
 * judges the same paths); each release's code then answers for itself.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CORPUS, CRASH_CORPUS, EXTRA_ENTRIES, writeCase, writeCorpus } from './helpers/corpus';
import { GanetiAnswer, ganetiBatch } from './helpers/ganeti';
import { describeReleases } from './helpers/system';
import { diagnoseOs } from '../src/ganeti/diagnose';
import { ValidateResult, validateOne } from '../src/commands/validate';
import { tempDir } from './helpers/cli';

let root: string;
let search: string;
const judged = new Map<string, ValidateResult>();
/** validateOne's answer for a directory, computed once for every release's comparison. */
const mine = (dir: string): ValidateResult => {
  if (!judged.has(dir)) judged.set(dir, validateOne(dir, { strict: false }));
  return judged.get(dir)!;
};

beforeAll(() => {
  root = tempDir('corpus');
  search = path.join(root, 'os');
  fs.mkdirSync(search);
  writeCorpus(search, CORPUS);
  for (const c of CRASH_CORPUS) writeCase(path.join(root, 'crash'), c);
  const node = path.join(root, 'crashnode');
  fs.mkdirSync(node);
  writeCase(node, CORPUS[0]);
  writeCase(node, CRASH_CORPUS[0]);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const TRYOS = ['good', 'untrusted-only', 'untrusted-and-trusted', 'good-api15', 'api10-ignores-variants', 'parameters-name-only', 'trailing-newline\n'];

describeReleases('validate agrees with _TryOSFromDisk on the corpus', {}, (release) => {
  let answer: [string, string, boolean, string, string[], string[][], number[], boolean][];
  /** _TryOSFromDisk's answer per directory, and DiagnoseOS's on the crashing node. */
  const tryos = new Map<string, GanetiAnswer>();
  let crashNode: GanetiAnswer;

  beforeAll(() => {
    // Every question to this release in one run of its code.
    const dirs = [...TRYOS.map((n) => path.join(search, n)), ...CRASH_CORPUS.map((c) => path.join(root, 'crash', c.name))];
    const [g, node, ...each] = ganetiBatch(
      [{ action: 'diagnose', dirs: [search] }, { action: 'diagnose', dirs: [path.join(root, 'crashnode')] }, ...dirs.map((dir) => ({ action: 'tryos', dir }))],
      release,
    );
    if (!g.ok) throw new Error(`DiagnoseOS failed: ${g.error}\n${g.traceback}`);
    answer = g.result as typeof answer;
    crashNode = node;
    dirs.forEach((d, i) => tryos.set(d, each[i]));
  });

  it('DiagnoseOS sees every case', () => {
    expect(answer.map((r) => r[0]).sort()).toEqual([...CORPUS.map((c) => c.name), ...EXTRA_ENTRIES].sort());
  });

  it.each([...CORPUS.map((c) => c.name), ...EXTRA_ENTRIES].map((n) => [JSON.stringify(n), n]))('%s: same verdict and message', (_label, name) => {
    const row = answer.find((r) => r[0] === name)!;
    const r = mine(path.join(search, name));
    expect({ valid: r.valid, error: r.error }).toEqual({ valid: row[2], error: row[2] ? null : row[3] });
    if (r.valid) {
      expect({ variants: r.variants, parameters: r.parameters, api: r.apiVersions, trusted: r.trusted }).toEqual({
        variants: row[4],
        parameters: row[5],
        api: row[6],
        trusted: row[7],
      });
    }
  });

  it.each(TRYOS.map((n) => [JSON.stringify(n), n]))('%s: the JSON "ganeti" member is what the harness gets from _TryOSFromDisk', (_label, name) => {
    const dir = path.join(search, name);
    expect(mine(dir).ganeti).toEqual(tryos.get(dir));
  });

  it('diagnose returns exactly what DiagnoseOS returns, in the same order', () => {
    const d = diagnoseOs([search]);
    expect(d.crash).toBeNull();
    expect(d.diagnoseOS).toEqual(answer);
  });

  it.each(CRASH_CORPUS.map((c) => [c.name]))('%s: Ganeti raises, validate reports the same exception', (name) => {
    const dir = path.join(root, 'crash', name);
    const g = tryos.get(dir)!;
    const r = mine(dir);
    expect({ valid: r.valid, error: r.error, crash: r.crash }).toEqual({ valid: g.ok, error: g.error, crash: g.type ?? null });
    expect(r.ganeti).toEqual({ ok: g.ok, error: g.error, type: g.type });
  });

  it('a crash in one definition makes DiagnoseOS raise for the whole node, and diagnose says so', () => {
    const g = crashNode;
    expect(g.ok).toBe(false);
    const d = diagnoseOs([path.join(root, 'crashnode')]);
    expect(d.diagnoseOS).toBeNull();
    expect(d.crash).toMatchObject({ type: g.type, message: g.error });
  });
});
