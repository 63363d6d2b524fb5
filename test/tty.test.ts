/** `new` on a real terminal (tmux): inquirer asks, answers land in the definition, Ctrl-C exits 130. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BIN, tempDir } from './helpers/cli';
import { describeSystem } from './helpers/system';

jest.setTimeout(60000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// tmux runs the session's command with the user's login shell: SHELL set, so that an account
// whose shell is nologin (nobody, as CI's user tests run) runs it too.
const tmux = (...args: string[]) => spawnSync('tmux', ['-L', 'ganeti-os-test', ...args], { encoding: 'utf8', env: { ...process.env, SHELL: '/bin/sh' } });

async function waitFor(re: RegExp, ms = 15000): Promise<string> {
  const end = Date.now() + ms;
  let screen = '';
  while (Date.now() < end) {
    screen = tmux('capture-pane', '-p', '-t', 't').stdout;
    if (re.test(screen)) return screen;
    await sleep(150);
  }
  throw new Error(`timed out waiting for ${re} on screen:\n${screen}`);
}

let work: string;
beforeEach(() => {
  work = tempDir();
});
afterEach(() => {
  tmux('kill-server');
  fs.rmSync(work, { recursive: true, force: true });
});

function start(args: string): void {
  // CI=true (as CI runs the tests) turns questions off by design: this terminal is a person's.
  const cmd = `cd ${JSON.stringify(work)} && env -u CI ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} ${args}; echo EXIT=$?; sleep 30`;
  const r = tmux('new-session', '-d', '-s', 't', '-x', '150', '-y', '40', cmd);
  if (r.status !== 0) throw new Error(r.stderr);
}

describeSystem('new on a terminal', { commands: ['tmux'] }, () => {
  it('asks with inquirer for what the flags did not give', async () => {
    start('new ttyos --template blank');
    await waitFor(/OS interface versions/);
    tmux('send-keys', '-t', 't', 'Down', 'Space', 'Enter'); // drop 15
    await waitFor(/Variants/);
    tmux('send-keys', '-t', 't', 'C-u', 'alpha, beta', 'Enter');
    await waitFor(/Parameter name/);
    tmux('send-keys', '-t', 't', 'root-size', 'Enter');
    await waitFor(/Description of root-size/);
    tmux('send-keys', '-t', 't', 'Size of /', 'Enter');
    await waitFor(/Another parameter/);
    tmux('send-keys', '-t', 't', 'Enter');
    await waitFor(/EXIT=0/);
    const root = path.join(work, 'ttyos');
    expect(fs.readFileSync(path.join(root, 'ganeti_api_version'), 'utf8')).toBe('20\n10\n');
    expect(fs.readFileSync(path.join(root, 'variants.list'), 'utf8')).toMatch(/\nalpha\nbeta\n$/);
    expect(fs.readFileSync(path.join(root, 'parameters.list'), 'utf8')).toBe('root-size Size of /\n');
  });

  it('Ctrl-C at a question exits 130 and writes nothing', async () => {
    start('new ttyos');
    await waitFor(/Template/);
    tmux('send-keys', '-t', 't', 'C-c');
    await waitFor(/EXIT=130/);
    expect(fs.readdirSync(work)).toEqual([]);
  });
});
