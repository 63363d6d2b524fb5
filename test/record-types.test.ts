/**
 * Issue 21: a .ganeti-os.json whose fields have the wrong type ("choices": "ext4") makes every
 * command that edits the definition exit 1 naming the field, never 70 with a TypeError, and
 * change nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, tempDir, treeHash } from './helpers/cli';

let work: string;
let d: string;
beforeAll(() => {
  work = tempDir('rectypes');
  const r = runCli(['new', 'os', '--template', 'blank', '--api', '20,15,10', '--yes'], { cwd: work });
  if (r.code !== 0) throw new Error(r.stderr);
  d = path.join(work, 'os');
});
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

type Rec = Record<string, unknown> & { answers: Record<string, unknown>; files: Record<string, Record<string, unknown>> };

const BREAKS: [string, string, (r: Rec) => void][] = [
  ['answers.parameters[0].choices', 'a list of strings', (r) => void (r.answers.parameters = [{ name: 'fs', description: 'x', choices: 'ext4' }])],
  ['answers.parameters[0].default', 'a string', (r) => void (r.answers.parameters = [{ name: 'fs', description: 'x', default: 5 }])],
  ['answers.variants[0].settings.SUITE', 'a string', (r) => void (r.answers.variants = [{ name: 'default', settings: { SUITE: ['bookworm'] } }])],
  ['answers.apiVersions[0]', 'a whole number', (r) => void (r.answers.apiVersions = ['20'])],
  ['files.create.mode', 'an octal mode', (r) => void (r.files.create.mode = 493)],
  ['templateParameters', 'a list of parameters', (r) => void (r.templateParameters = 'none')],
];

const COMMANDS = [['add-variant', 'x'], ['upgrade'], ['remove-variant', 'default', '--force'], ['add-param', 'size', 'Root size'], ['bump-api', '15', '--force']];

describe.each(BREAKS)('%s of the wrong type', (field, expected, breakIt) => {
  it.each(COMMANDS.map((c) => [c.join(' '), c]))('%s: exit 1 naming it, nothing changed', (_name, args) => {
    const file = path.join(d, '.ganeti-os.json');
    const good = fs.readFileSync(file, 'utf8');
    const rec = JSON.parse(good) as Rec;
    breakIt(rec);
    fs.writeFileSync(file, JSON.stringify(rec, null, 2));
    try {
      const before = treeHash(d);
      const r = runCli([...(args as string[]), '--os-dir', d], { cwd: work });
      expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(`${field} should be ${expected}`)]);
      expect(r.stderr).not.toMatch(/TypeError|at .*\.js:\d+/);
      expect(treeHash(d)).toBe(before);
    } finally {
      fs.writeFileSync(file, good);
    }
  });
});
