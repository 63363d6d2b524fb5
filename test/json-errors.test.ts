/**
 * Issue 21, --json: every --json run prints one JSON document whose "ok" matches the exit status,
 * refusals and errors included (stdout had nothing on a refusal, and `diagnose DIR --json` said
 * "ok": true for a missing DIR while exiting 1).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runInProcess, tempDir } from './helpers/cli';

let work: string;
let dir: string;
beforeAll(async () => {
  work = tempDir('json-errors');
  const r = await runInProcess(['new', 'myos', '--template', 'blank', '--yes'], { cwd: work });
  if (r.code !== 0) throw new Error(r.stderr);
  dir = path.join(work, 'myos');
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const missing = '/nonexistent-ganeti-os-json';

/** stdout as exactly one JSON document (JSON.parse refuses two, or none). */
function doc(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('--json failures print one document with "ok": false', () => {
  const cases: [string, () => string[], number][] = [
    ['diagnose, a missing search directory', () => ['diagnose', missing, '--json'], 1],
    ['pack, a missing definition', () => ['pack', '--os-dir', missing, '--json'], 1],
    ['pack, an unknown option', () => ['pack', '--os-dir', dir, '--json', '--nope'], 2],
    ['info, a missing definition', () => ['info', missing, '--json'], 1],
    ['validate, a missing definition', () => ['validate', missing, '--json'], 1],
    ['new, an invalid OS name', () => ['new', 'bad.name', '--template', 'blank', '--yes', '--json'], 2],
    ['new, over an existing definition', () => ['new', 'myos', '--template', 'blank', '--yes', '--json'], 1],
    ['add-param, an invalid name', () => ['add-param', 'NAME', 'd', '--os-dir', dir, '--json'], 2],
    ['add-param, a missing description', () => ['add-param', 'x', '--os-dir', dir, '--json'], 2],
    ['remove-param, a parameter not there', () => ['remove-param', 'nosuch', '--os-dir', dir, '--json'], 1],
    ['add-variant, a missing definition', () => ['add-variant', 'v', '--os-dir', missing, '--json'], 1],
    ['remove-variant, a variant not there', () => ['remove-variant', 'nosuch', '--os-dir', dir, '--json'], 1],
    ['bump-api, an unsupported version', () => ['bump-api', '5', '--os-dir', dir, '--json'], 2],
    ['upgrade, a missing definition', () => ['upgrade', '--os-dir', missing, '--json'], 1],
    ['run, a missing definition', () => ['run', 'create', '--os-dir', missing, '--json'], 1],
    ['test, a missing definition', () => ['test', '--os-dir', missing, '--json'], 1],
    ['rollout, a missing package', () => ['rollout', `${missing}.deb`, '--json'], 2],
    ['template check, a missing template', () => ['template', 'check', missing, '--json'], 1],
  ];
  it.each(cases)('%s', async (_what, args, code) => {
    const r = await runInProcess(args(), { cwd: work });
    expect(r.code).toBe(code);
    const d = doc(r.stdout);
    expect(d.ok).toBe(false);
    // The error itself, or (validate) the results that say why.
    expect((typeof d.error === 'string' && d.error.length > 0) || Array.isArray(d.results)).toBe(true);
    if (typeof d.error === 'string') expect(r.stderr).toContain(d.error.split('\n')[0]);
  });

  it('diagnose: the error is in the document that says what was read', async () => {
    const r = await runInProcess(['diagnose', missing, '--json'], { cwd: work });
    const d = doc(r.stdout);
    expect([r.code, d.ok]).toEqual([1, false]);
    expect(d.error).toContain(missing);
    expect(d.searchPath).toEqual([missing]);
  });

  it('a run that succeeds still prints its document once, "ok": true', async () => {
    const r = await runInProcess(['diagnose', work, '--json'], { cwd: work });
    expect(r.code).toBe(0);
    expect(doc(r.stdout).ok).toBe(true);
    const i = await runInProcess(['info', dir, '--json'], { cwd: work });
    expect(i.code).toBe(0);
    expect(doc(i.stdout)).toEqual(expect.objectContaining({ name: 'myos' }));
  });

  it('every command that succeeds says "ok": true in its document (info, new, the maintenance commands, upgrade, run --print-env)', async () => {
    const runs: string[][] = [
      ['info', dir, '--json'],
      ['new', 'other', '--template', 'blank', '--yes', '--dry-run', '--json'],
      ['add-variant', 'v2', '--os-dir', dir, '--dry-run', '--json'],
      ['add-param', 'size', 'Disk size', '--os-dir', dir, '--dry-run', '--json'],
      ['bump-api', '20', '--os-dir', dir, '--dry-run', '--json'],
      ['upgrade', '--os-dir', dir, '--dry-run', '--json'],
      ['run', 'verify', '--os-dir', dir, '--print-env', '--json'],
    ];
    for (const argv of runs) {
      const r = await runInProcess(argv, { cwd: work });
      expect([argv.join(' '), r.code, doc(r.stdout).ok]).toEqual([argv.join(' '), 0, true]);
    }
    const env = doc((await runInProcess(['run', 'verify', '--os-dir', dir, '--print-env', '--json'], { cwd: work })).stdout);
    expect(env).toEqual(expect.objectContaining({ script: 'verify', ganeti: expect.stringMatching(/^3\.[01]$/) }));
    expect((env.environment as Record<string, string>).OS_NAME).toBe('myos');
  });

  it('without --json a failure prints nothing on stdout', async () => {
    const r = await runInProcess(['pack', '--os-dir', missing], { cwd: work });
    expect([r.code, r.stdout]).toEqual([1, '']);
  });
});
