/**
 * Issue 21: bash run with `-c` and a socket on stdin (node's 'pipe') takes itself for a command
 * run by rshd/sshd and reads ~/.bashrc when SHLVL is unset (cron, systemd, ssh host command).
 * Nothing ganeti-os runs may read the administrator's ~/.bashrc.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, tempDir } from './helpers/cli';

let work: string;
let home: string;
let marker: string;
beforeEach(() => {
  work = tempDir('no-bashrc');
  home = path.join(work, 'home');
  fs.mkdirSync(home);
  marker = path.join(home, 'bashrc-was-read');
  fs.writeFileSync(path.join(home, '.bashrc'), `echo "$0 $*" >> ${JSON.stringify(marker)}\n`);
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

/** The CLI with HOME at the test's home and no SHLVL (as cron or systemd start it). */
function cli(args: string[]) {
  return runCli(args, { cwd: work, env: { HOME: home } });
}

describe("ganeti-os never reads the admin's ~/.bashrc", () => {
  it('the heuristic is real: bash -c with a socket on stdin reads it here', () => {
    // The control: without it, the test below could pass by never reaching bash's heuristic.
    const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
    const r = spawnSync('bash', ['-c', 'true'], { env: { PATH: process.env.PATH, HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
    expect(r.status).toBe(0);
    expect(fs.existsSync(marker)).toBe(true);
  });

  it('new, add-param --pattern, add-variant, validate, info', () => {
    expect(cli(['new', 'myos', '--template', 'blank', '--yes', '--param', 'size=Disk size']).code).toBe(0);
    const dir = path.join(work, 'myos');
    const steps = [
      ['add-param', 'count', 'How many', '--pattern', '[0-9]+', '--default', '5', '--os-dir', dir],
      ['add-variant', 'small', '--set', 'SUITE=x', '--os-dir', dir],
      ['validate', dir],
      ['info', dir],
    ];
    for (const s of steps) expect([s[0], cli(s).code]).toEqual([s[0], 0]);
    expect(fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : '').toBe('');
  });
});
