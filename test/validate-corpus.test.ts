/**
 * The corpus of broken and odd definitions: ganeti-os's verdict (validate, diagnose) must be
 * Ganeti 3.0's own, word for word, on every one.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CORPUS, CRASH_CORPUS, EXTRA_ENTRIES, writeCase, writeCorpus } from './helpers/corpus';
import { ganeti, tryOsFromDisk } from './helpers/ganeti';
import { describeSystem } from './helpers/system';
import { diagnoseOs } from '../src/ganeti/diagnose';
import { validateOne } from '../src/commands/validate';

describeSystem('validate agrees with _TryOSFromDisk on the corpus', { ganeti: true }, () => {
  let root: string;
  let search: string;
  let answer: [string, string, boolean, string, string[], string[][], number[], boolean][];

  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gos-corpus-'));
    search = path.join(root, 'os');
    fs.mkdirSync(search);
    writeCorpus(search, CORPUS);
    const g = ganeti({ action: 'diagnose', dirs: [search] });
    if (!g.ok) throw new Error(`DiagnoseOS failed: ${g.error}\n${g.traceback}`);
    answer = g.result as typeof answer;
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('DiagnoseOS sees every case', () => {
    expect(answer.map((r) => r[0]).sort()).toEqual([...CORPUS.map((c) => c.name), ...EXTRA_ENTRIES].sort());
  });

  it.each([...CORPUS.map((c) => c.name), ...EXTRA_ENTRIES].map((n) => [JSON.stringify(n), n]))('%s: same verdict and message', (_label, name) => {
    const row = answer.find((r) => r[0] === name)!;
    const r = validateOne(path.join(search, name), { strict: false });
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

  it.each(['good', 'untrusted-only', 'untrusted-and-trusted', 'good-api15', 'api10-ignores-variants', 'parameters-name-only', 'trailing-newline\n'].map((n) => [JSON.stringify(n), n]))(
    '%s: the JSON "ganeti" member is what the harness gets from _TryOSFromDisk',
    (_label, name) => {
      const dir = path.join(search, name);
      expect(validateOne(dir, { strict: false }).ganeti).toEqual(tryOsFromDisk(dir));
    },
  );

  it('diagnose returns exactly what DiagnoseOS returns, in the same order', () => {
    const mine = diagnoseOs([search]);
    expect(mine.crash).toBeNull();
    expect(mine.diagnoseOS).toEqual(answer);
  });

  it.each(CRASH_CORPUS.map((c) => [c.name]))('%s: Ganeti raises, validate reports the same exception', (name) => {
    const dir = writeCase(path.join(root, 'crash'), CRASH_CORPUS.find((c) => c.name === name)!);
    const g = tryOsFromDisk(dir) as { ok: boolean; error?: string; type?: string };
    const r = validateOne(dir, { strict: false });
    expect({ valid: r.valid, error: r.error, crash: r.crash }).toEqual({ valid: g.ok, error: g.error, crash: g.type ?? null });
    expect(r.ganeti).toEqual({ ok: g.ok, error: g.error, type: g.type });
  });

  it('a crash in one definition makes DiagnoseOS raise for the whole node, and diagnose says so', () => {
    const dir = path.join(root, 'crashnode');
    fs.mkdirSync(dir);
    writeCase(dir, CORPUS[0]);
    writeCase(dir, CRASH_CORPUS[0]);
    const g = ganeti({ action: 'diagnose', dirs: [dir] });
    expect(g.ok).toBe(false);
    const mine = diagnoseOs([dir]);
    expect(mine.diagnoseOS).toBeNull();
    expect(mine.crash).toMatchObject({ type: g.type, message: g.error });
  });
});
