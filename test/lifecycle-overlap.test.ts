/**
 * The lifecycle loop (src/lifecycle/lifecycle.ts) with steps in the background, as the local
 * backend runs its boots: a background step overlaps the steps after it (their start times in
 * the results show it), a step waits for what it needs or must come after, the results keep the
 * backend's order, an abort or a failure in the middle still waits for every background step
 * before close(), and close() learns whether a step failed. The local backend's own order: the
 * first boot in the background, reinstall after it, rename after the second boot.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Backend, Reporter, Step, StepResult, failed, lifecyclePassed, passed, runLifecycle } from '../src/lifecycle/lifecycle';
import { LocalBackend } from '../src/lifecycle/local';
import { readDefinition } from '../src/definition/model';
import { runInProcess, tempDir } from './helpers/cli';

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

class FakeBackend implements Backend {
  readonly name = 'fake';
  closed: { keepLogs: boolean; running: string[] } | undefined;
  running = new Set<string>();
  constructor(private readonly list: Step[]) {}
  steps(): Step[] {
    return this.list.map((s) => ({
      ...s,
      run: async (sc) => {
        this.running.add(s.name);
        try {
          return await s.run(sc);
        } finally {
          this.running.delete(s.name);
        }
      },
    }));
  }
  async close(keepLogs: boolean): Promise<void> {
    this.closed = { keepLogs, running: [...this.running] };
  }
}

const quiet: Reporter = { started: () => undefined, phase: () => undefined, finished: () => undefined };
const ends = (r: StepResult) => r.start + r.seconds;
const byName = (rs: StepResult[]) => Object.fromEntries(rs.map((r) => [r.step, r]));

describe('lifecycle: steps in the background', () => {
  it('a background step overlaps the next ones; after and needs wait for it; results keep the order', async () => {
    const b = new FakeBackend([
      { name: 'create', title: 'create', run: async () => passed('ok') },
      { name: 'boot', title: 'boot', needs: ['create'], background: true, run: async (sc) => (await sleep(600, sc.signal), passed('booted')) },
      { name: 'export', title: 'export', needs: ['create'], run: async () => (await sleep(100), passed('exported')) },
      { name: 'import', title: 'import', needs: ['export'], run: async () => (await sleep(100), passed('imported')) },
      { name: 'reinstall', title: 'reinstall', needs: ['create'], after: ['boot'], run: async () => passed('again') },
    ]);
    const finishedOrder: string[] = [];
    const rs = await runLifecycle(b, { ...quiet, finished: (r) => finishedOrder.push(r.step) }, new AbortController().signal);
    expect(rs.map((r) => r.step)).toEqual(['create', 'boot', 'export', 'import', 'reinstall']);
    const s = byName(rs);
    // export and import ran while boot did.
    expect(s.export.start).toBeLessThan(ends(s.boot));
    expect(ends(s.import)).toBeLessThan(ends(s.boot));
    // reinstall only after boot.
    expect(s.reinstall.start).toBeGreaterThanOrEqual(ends(s.boot) - 0.01);
    expect(finishedOrder).toEqual(['create', 'export', 'import', 'boot', 'reinstall']);
    expect(lifecyclePassed(rs)).toBe(true);
    // Wall time below the sum of the steps: they overlapped.
    expect(ends(s.reinstall)).toBeLessThan(rs.reduce((a, r) => a + r.seconds, 0));
    expect(b.closed).toEqual({ keepLogs: false, running: [] });
  });

  it('a step needing a failed background step is skipped; close waits for the background step and keeps the logs', async () => {
    const b = new FakeBackend([
      { name: 'boot', title: 'boot', background: true, run: async () => (await sleep(300), failed('no login prompt')) },
      { name: 'export', title: 'export', run: async () => {
        throw new Error('export crashed');
      } },
      { name: 'after-boot', title: 'after boot', needs: ['boot'], run: async () => passed('never') },
    ]);
    const rs = await runLifecycle(b, quiet, new AbortController().signal);
    const s = byName(rs);
    expect(s.export).toMatchObject({ status: 'failed', detail: 'export crashed' });
    expect(s.boot.status).toBe('failed');
    expect(s['after-boot']).toMatchObject({ status: 'skipped', detail: 'needs boot, which did not pass' });
    expect(b.closed).toEqual({ keepLogs: true, running: [] });
  });

  it('an abort stops the background step before close; the rest is skipped as interrupted', async () => {
    const ac = new AbortController();
    const b = new FakeBackend([
      { name: 'boot', title: 'boot', background: true, run: async (sc) => (await sleep(30_000, sc.signal), sc.signal.aborted ? failed('interrupted') : passed('booted')) },
      { name: 'export', title: 'export', run: async () => (await sleep(50), ac.abort(), passed('exported')) },
      { name: 'import', title: 'import', run: async () => passed('never') },
    ]);
    const t0 = Date.now();
    const rs = await runLifecycle(b, quiet, ac.signal);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(byName(rs).import).toMatchObject({ status: 'skipped', detail: 'interrupted' });
    expect(byName(rs).boot).toMatchObject({ status: 'failed', detail: 'interrupted (interrupted)' });
    expect(b.closed).toEqual({ keepLogs: true, running: [] });
  });
});

describe('the local backend: its boots overlap the other steps', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('overlap');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('boots the first disk in the background, grows the import before its boot, reinstalls after the first boot and renames after the second', async () => {
    expect((await runInProcess(['new', 'blank-os', '--template', 'blank', '--yes'], { cwd: dir })).code).toBe(0);
    const def = readDefinition(path.join(dir, 'blank-os'));
    const b = new LocalBackend({ def, instance: { release: '3.0' }, diskSizeMiB: 64, workDir: path.join(dir, 'w'), keep: false, accel: 'tcg', bootTimeout: 10, log: { info: () => undefined, warn: () => undefined } as never });
    const steps = Object.fromEntries(b.steps().map((s) => [s.name, s]));
    expect(b.steps().map((s) => s.name)).toEqual(['verify', 'create', 'boot', 'export', 'import', 'grow', 'boot-import', 'rename', 'reinstall']);
    expect(steps.boot.background).toBe(true);
    expect(steps.export.needs).toEqual(['create']);
    expect(steps['boot-import'].needs).toEqual(['grow']);
    expect(steps.reinstall.after).toEqual(['boot']);
    expect(steps.rename.after).toEqual(['boot-import']);
  });
});
