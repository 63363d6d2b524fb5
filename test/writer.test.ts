import * as fs from 'node:fs';
import * as path from 'node:path';
import { Plan, planWrite } from '../src/definition/plan';
import { JOURNAL_FILE, applyPlan, recoverInterrupted } from '../src/definition/writer';
import { snapshotTree, tempDir } from './helpers/cli';

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const files = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => ({ path: i % 2 ? `sub/f${i}` : `f${i}`, content: `${tag} ${i}\n`, mode: i % 3 ? 0o644 : 0o755, owner: 'tool' as const }));

function plan(root: string, tag: string, n = 6, force = true): Plan {
  return { root, ops: planWrite(root, files(n, tag), { force }), notes: [] };
}

describe('writer: a new definition appears whole or not at all', () => {
  it('builds the tree with the planned modes', () => {
    const root = path.join(dir, 'os');
    applyPlan(plan(root, 'v1'));
    expect(fs.readFileSync(path.join(root, 'sub', 'f1'), 'utf8')).toBe('v1 1\n');
    expect(fs.statSync(path.join(root, 'f0')).mode & 0o777).toBe(0o755);
    expect(fs.statSync(path.join(root, 'sub', 'f1')).mode & 0o777).toBe(0o644);
    expect(fs.readdirSync(dir)).toEqual(['os']);
  });

  it.each([0, 3, 5])('a failure at file %i leaves nothing behind', (at) => {
    const root = path.join(dir, 'os');
    expect(() =>
      applyPlan(plan(root, 'v1'), {
        beforeCommitStep: (i) => {
          if (i === at) throw new Error('injected');
        },
      }),
    ).toThrow(/injected/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('writer: an existing definition keeps its previous state on failure', () => {
  it.each([0, 2, 5])('a failure at commit step %i rolls every file back', (at) => {
    const root = path.join(dir, 'os');
    applyPlan(plan(root, 'v1', 4));
    fs.writeFileSync(path.join(root, 'other'), 'untouched\n');
    const before = snapshotTree(root);
    expect(() =>
      applyPlan(plan(root, 'v2', 6), {
        beforeCommitStep: (i) => {
          if (i === at) throw new Error('injected');
        },
      }),
    ).toThrow(/previous files were put back/);
    expect(snapshotTree(root)).toEqual(before);
  });

  it('applies updates, creations and deletions together', () => {
    const root = path.join(dir, 'os');
    applyPlan(plan(root, 'v1', 4));
    const p = plan(root, 'v2', 6);
    p.ops.push({ path: 'f0', kind: 'delete' });
    p.ops = p.ops.filter((o) => !(o.path === 'f0' && o.kind !== 'delete'));
    applyPlan(p);
    expect(fs.existsSync(path.join(root, 'f0'))).toBe(false);
    expect(fs.readFileSync(path.join(root, 'sub', 'f5'), 'utf8')).toBe('v2 5\n');
    expect(snapshotTree(root).filter((e) => e.path.includes('ganeti-os'))).toEqual([]);
  });

  it('a write killed half-way is rolled back by the next command', () => {
    const root = path.join(dir, 'os');
    applyPlan(plan(root, 'v1', 4));
    const before = snapshotTree(root);
    // Simulate a kill after two renames: run the commit in a child that dies mid-way.
    let journal = '';
    try {
      applyPlan(plan(root, 'v2', 6), {
        beforeCommitStep: (i) => {
          if (i === 2) {
            journal = fs.readFileSync(path.join(root, JOURNAL_FILE), 'utf8');
            throw new Error('killed');
          }
        },
      });
    } catch {
      // rolled back in-process; now recreate the on-disk state of a real kill at this point
    }
    expect(journal).not.toBe('');
    // Replay the state a SIGKILL would leave: journal present, two files swapped.
    // Entries are relative to the definition; staged and moved-aside files sit beside their target.
    const { entries } = JSON.parse(journal) as { entries: { path: string; staged?: boolean; backup?: boolean }[] };
    const beside = (rel: string, tag: string) => path.join(root, path.dirname(rel), `.${path.basename(rel)}${tag}`);
    for (const e of entries) expect(path.isAbsolute(e.path) || e.path.includes('..')).toBe(false);
    for (const e of entries) if (e.staged) fs.writeFileSync(beside(e.path, '.ganeti-os-new'), 'new\n');
    fs.writeFileSync(path.join(root, JOURNAL_FILE), journal);
    for (const e of entries.slice(0, 2)) {
      if (e.backup) fs.renameSync(path.join(root, e.path), beside(e.path, '.ganeti-os-old'));
      if (e.staged) fs.renameSync(beside(e.path, '.ganeti-os-new'), path.join(root, e.path));
    }
    expect(snapshotTree(root)).not.toEqual(before);
    expect(recoverInterrupted(root)).toBe(true);
    expect(snapshotTree(root)).toEqual(before);
    expect(recoverInterrupted(root)).toBe(false);
  });

  it('refuses a plan with conflicts before writing anything', () => {
    const root = path.join(dir, 'os');
    applyPlan(plan(root, 'v1', 2));
    fs.writeFileSync(path.join(root, 'f0'), 'edited by hand\n');
    const before = snapshotTree(root);
    const p: Plan = { root, ops: planWrite(root, files(4, 'v2'), { force: false }), notes: [] };
    expect(p.ops.find((o) => o.path === 'f0')!.kind).toBe('conflict');
    expect(() => applyPlan(p)).toThrow(/stand in the way/);
    expect(snapshotTree(root)).toEqual(before);
  });

  it('writes through a symlinked file into its target', () => {
    const root = path.join(dir, 'os');
    applyPlan(plan(root, 'v1', 2));
    const etc = path.join(dir, 'etc-variants.list');
    fs.writeFileSync(etc, 'a\n');
    fs.symlinkSync(etc, path.join(root, 'variants.list'));
    const p: Plan = { root, ops: planWrite(root, [{ path: 'variants.list', content: 'a\nb\n', mode: 0o644, owner: 'tool' }], { force: true }), notes: [] };
    expect(p.ops[0].realPath).toBe(etc);
    applyPlan(p);
    expect(fs.lstatSync(path.join(root, 'variants.list')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(etc, 'utf8')).toBe('a\nb\n');
  });
});
