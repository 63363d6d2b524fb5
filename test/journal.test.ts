/**
 * Issue 21, the journal: its entries are relative to the definition that holds it and are
 * resolved against it only. A definition moved while its journal was pending rolls back itself,
 * never the directory it came from; a journal naming anything outside the definition (an
 * older ganeti-os's absolute paths, a crafted one) is refused and reported, nothing touched.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { newDefinition, runCli, tempDir, treeHash } from './helpers/cli';
import { runWithFault } from './helpers/faults';

let work: string;
beforeEach(() => {
  work = tempDir('journal');
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

/** A tree hash without its first line (the root's path): the same tree wherever it lies. */
const body = (hash: string) => hash.split('\n').slice(1).join('\n');

const newDef = (name: string): string => newDefinition(work, name, ['--template', 'blank', '--api', '20,15,10']);

describe('a definition moved with a pending journal', () => {
  it('rolls back itself; the definition now at its old path keeps its files', () => {
    const a = newDef('a');
    const before = body(treeHash(a));
    // The reference: the same definition under the same name, changed undisturbed.
    fs.mkdirSync(path.join(work, 'ref'));
    const ref = path.join(work, 'ref', 'b');
    fs.cpSync(a, ref, { recursive: true });
    expect(runCli(['add-variant', 'jammy', '--os-dir', ref], { cwd: work }).code).toBe(0);
    // add-variant killed just before its 3rd rename: some files new, some old, the journal pending.
    const k = runWithFault(['add-variant', 'noble', '--os-dir', a], { cwd: work, scope: work, fault: { cls: 'rename', n: 3, action: 'kill' } });
    expect(k.killed).toBe(true);
    expect(fs.existsSync(path.join(a, '.ganeti-os.journal'))).toBe(true);
    expect(body(treeHash(a))).not.toBe(before);
    const b = path.join(work, 'b');
    fs.renameSync(a, b);
    newDef('a');
    expect(runCli(['add-variant', 'noble', '--os-dir', a], { cwd: work }).code).toBe(0);
    const aAfter = treeHash(a);
    expect(fs.readFileSync(path.join(a, 'variants.list'), 'utf8')).toMatch(/^noble$/m);

    const r = runCli(['add-variant', 'jammy', '--os-dir', b, '--dry-run'], { cwd: work });
    expect(r.code).toBe(0);
    // The real run rolls b back first, then adds jammy to it: a is not touched.
    const r2 = runCli(['add-variant', 'jammy', '--os-dir', b], { cwd: work });
    expect([r2.code, r2.stderr]).toEqual([0, expect.stringContaining('rolled back')]);
    expect(treeHash(a)).toBe(aAfter);
    expect(fs.existsSync(path.join(a, 'variants', 'noble.conf'))).toBe(true);
    // b is what an undisturbed add-variant jammy on the original gives: no trace of noble.
    expect(body(treeHash(b))).toBe(body(treeHash(ref)));
    expect(fs.readdirSync(b).filter((f) => f.includes('ganeti-os-'))).toEqual([]);
  });
});

describe('a journal naming files outside the definition', () => {
  function victim(): string {
    const v = path.join(work, 'victim.conf');
    fs.writeFileSync(v, 'keep me\n');
    return v;
  }

  function expectRefused(d: string, named: string): void {
    const before = treeHash(d);
    const r = runCli(['add-variant', 'jammy', '--os-dir', d], { cwd: work });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('names files outside');
    expect(r.stderr).toContain(named);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    expect(treeHash(d)).toBe(before);
  }

  it('an older journal with absolute paths into another directory: refused, that file kept', () => {
    const d = newDef('os');
    const v = victim();
    // The format before issue 21: absolute target, staged and backup paths.
    const journal = { state: 'pending', entries: [{ target: v, staged: path.join(work, '.victim.conf.ganeti-os-new') }], createdDirs: [] };
    fs.writeFileSync(path.join(d, '.ganeti-os.journal'), JSON.stringify(journal));
    expectRefused(d, v);
    expect(fs.readFileSync(v, 'utf8')).toBe('keep me\n');
  });

  it('an older journal with absolute paths inside the definition is still rolled back', () => {
    const d = newDef('os');
    const before = treeHash(d);
    const created = path.join(d, 'variants', 'jammy.conf');
    fs.writeFileSync(created, 'half-written\n');
    const journal = { state: 'pending', entries: [{ target: created, staged: path.join(d, 'variants', '.jammy.conf.ganeti-os-new') }], createdDirs: [] };
    fs.writeFileSync(path.join(d, '.ganeti-os.journal'), JSON.stringify(journal));
    const r = runCli(['add-variant', 'default', '--os-dir', d], { cwd: work });
    expect([r.code, r.stderr]).toEqual([0, expect.stringContaining('rolled back')]);
    expect(treeHash(d)).toBe(before);
  });

  it.each([
    ['a path with ..', (v: string) => ({ path: path.join('..', path.basename(v)), staged: true })],
    ['an absolute path', (v: string) => ({ path: v, staged: true })],
    ['a path through a "via" that is not a symlink', (v: string) => ({ path: path.basename(v), via: 'variants.list', staged: true })],
  ])('%s: refused, that file kept', (_name, entry) => {
    const d = newDef('os');
    const v = victim();
    const journal = { version: 2, state: 'pending', entries: [entry(v)], createdDirs: [] };
    fs.writeFileSync(path.join(d, '.ganeti-os.journal'), JSON.stringify(journal));
    expectRefused(d, path.basename(v));
    expect(fs.readFileSync(v, 'utf8')).toBe('keep me\n');
  });

  it('an entry inside the definition is removed only when it holds what the write put there', () => {
    const d = newDef('os');
    // A file the journal claims it created, but whose content is not the recorded one: kept.
    const f = path.join(d, 'variants', 'mine.conf');
    fs.writeFileSync(f, 'written by the admin\n');
    const journal = { version: 2, state: 'pending', entries: [{ path: 'variants/mine.conf', staged: true, sha256: '0'.repeat(64) }], createdDirs: [] };
    fs.writeFileSync(path.join(d, '.ganeti-os.journal'), JSON.stringify(journal));
    const r = runCli(['add-variant', 'default', '--os-dir', d], { cwd: work });
    expect(r.code).toBe(0);
    expect(fs.readFileSync(f, 'utf8')).toBe('written by the admin\n');
  });
});
