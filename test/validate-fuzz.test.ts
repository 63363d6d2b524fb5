/**
 * Seeded fuzzing: random ganeti_api_version, parameters.list and variants.list texts built from
 * the characters Python treats specially (whitespace, line breaks, Unicode digits, unprintable
 * and newer-than-Python-3.11 code points, quotes, underscores, huge numbers). ganeti-os's
 * verdicts and parsed lists must be DiagnoseOS's, byte for byte, on Ganeti 3.0 and 3.1 (the
 * same 600 cases on each: one DiagnoseOS call per release).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { def, writeCase } from './helpers/corpus';
import { ganeti } from './helpers/ganeti';
import { diagnoseOs } from '../src/ganeti/diagnose';
import { describeReleases } from './helpers/system';
import { tempDir } from './helpers/cli';

let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];
const atoms = ['20', '15', '10', '5', ' ', '\t', '\n', '\r', '\r\n', '+', '-', '_', '#', '\u00a0', '\u2028', '\u0085', '\u000b', '\u000c', '\u001c', '\u001f', '\ufeff', '\u0662', '\u0660', '\uff11', '\u{1d7ce}', 'a', "'", '"', '\\', '\u0000', '\u0007', '\u00ad', '\u200b', '\u3000', '\u{1f600}', '\ud7ff', '\u0378', '\ue000', 'é', '0', '1', '2', '\u2029', '\u001e', '\u00e9\u0301', '\u088f', '\u1acf', '\u{10d40}', '\u{116d0}', '\u{1fbf0}', '\u{e0001}', '\u{f0000}', '1'.repeat(40), '_1', '9'.repeat(4299)];
describeReleases('fuzzed list files', {}, (release) => {
test('600 seeded cases agree with DiagnoseOS', () => {
  seed = 12345;
  const root = tempDir('fuzz');
  for (let i = 0; i < 600; i++) {
    let s = '';
    const n = Math.floor(rnd() * 6);
    for (let k = 0; k < n; k++) s += pick(atoms);
    let p = '';
    const m = Math.floor(rnd() * 5);
    for (let k = 0; k < m; k++) p += pick(atoms) + (rnd() < 0.5 ? ' ' : '') + pick(['a', 'b c', 'x', '']);
    let v = '';
    for (let k = 0; k < m; k++) v += pick(atoms) + pick(['a', 'b', '']);
    writeCase(root, { name: `c${i}`, files: def({ ganeti_api_version: rnd() < 0.5 ? s : '20' + pick(['\n', '\r\n', '\u2028', '']) + s, 'parameters.list': p, 'variants.list': v }) });
  }
  const g = ganeti({ action: 'diagnose', dirs: [root] }, release);
  if (!g.ok) throw new Error(String(g.error));
  const mine = diagnoseOs([root]);
  const gm = new Map((g.result as unknown[][]).map((r) => [r[0], r]));
  let bad = 0;
  for (const r of mine.diagnoseOS ?? []) {
    if (JSON.stringify(gm.get(r[0])) !== JSON.stringify(r)) {
      bad++;
      if (bad < 15) console.log(JSON.stringify(fs.readFileSync(path.join(root, r[0], 'ganeti_api_version'), 'utf8')), '\n G', JSON.stringify(gm.get(r[0])), '\n O', JSON.stringify(r));
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
  expect(bad).toBe(0);
});
});
