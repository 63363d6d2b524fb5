/**
 * The fault sweep (test/faults/sweep.js) over a sample, in CI: `new` and `pack` with a kill and an
 * EIO at two points of each class of filesystem call (write, rename, fsync, unlink, mkdir,
 * read). The maintenance commands' faults are covered by writer-failures, journal and
 * pack-faults; `npm run test:faults -- --full` sweeps every call of every writing command.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { REPO } from './helpers/cli';
import { describeSystem } from './helpers/system';

jest.setTimeout(400_000);

describeSystem('fault sweep, a sample of new and pack', { commands: ['dpkg-deb'] }, () => {
  it('no mixed state, no exit other than 0 and 1, no hang, no lost update, nothing left', () => {
    const r = spawnSync(process.execPath, [path.join(REPO, 'test', 'faults', 'sweep.js'), '--commands', 'new,pack', '--points', '2', '--actions', 'kill,EIO'], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 380_000,
    });
    const table = r.stdout.split('\n');
    // The summary table's row: the command and eight counts.
    const row = (cmd: string) => table.find((l) => new RegExp(`^\\s*${cmd}(\\s+\\d+){8}\\s*$`).test(l))?.trim().split(/\s+/).map((x, i) => (i ? Number(x) : x));
    // command, trials, mixed, exit70, hangs, lost, leftovers, other, pending
    for (const cmd of ['new', 'pack']) {
      const [, trials, ...bad] = row(cmd) ?? [];
      expect([cmd, trials]).toEqual([cmd, expect.any(Number)]);
      expect(trials as number).toBeGreaterThan(15);
      expect([cmd, bad.slice(0, 6)]).toEqual([cmd, [0, 0, 0, 0, 0, 0]]);
    }
    expect([r.status, r.stdout.slice(-3000), r.stderr]).toEqual([0, expect.stringContaining('no violations'), '']);
  });
});
