/**
 * The process layer (src/system/process.ts): environment passed exactly, input, cwd, timeouts
 * that kill the whole process group, aborts, one result type and one failure message.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { alive } from '../src/system/kernel';
import { commandLine, failureMessage, onPath, run, runSync, RunResult } from '../src/system/process';
import { tempDir } from './helpers/trees';

const SH_ENV = { PATH: '/usr/bin:/bin' };

/** A shell that starts a background `sleep` (its own child, same group), writes its PID to `pidFile`, then waits. */
const GRANDCHILD = 'sleep 60 & echo $! > "$1"; wait';

let tmp: string;
beforeEach(() => (tmp = tempDir('proc')));
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const pidIn = (f: string) => Number(fs.readFileSync(f, 'utf8').trim());
const waitGone = async (pid: number) => {
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  return !alive(pid);
};

describe('runSync', () => {
  test('passes the environment exactly (nothing of process.env added), cwd and input', () => {
    process.env.GOS_LEAK_CHECK = 'leaked';
    try {
      const r = runSync(['sh', '-c', 'env | sort; pwd; cat'], { env: { ...SH_ENV, ONLY: 'this one' }, cwd: tmp, input: 'from stdin' });
      expect(r.status).toBe(0);
      const lines = r.stdout.split('\n');
      expect(lines).toContain('ONLY=this one');
      expect(r.stdout).not.toContain('GOS_LEAK_CHECK');
      expect(lines.filter((l) => /^[A-Z_]+=/.test(l) && !/^(PWD|SHLVL|_|OLDPWD)=/.test(l)).sort()).toEqual(['ONLY=this one', 'PATH=/usr/bin:/bin']);
      expect(lines).toContain(fs.realpathSync(tmp));
      expect(r.stdout.endsWith('from stdin')).toBe(true);
    } finally {
      delete process.env.GOS_LEAK_CHECK;
    }
  });

  test('without env the child inherits this process environment', () => {
    // (jest hands the test a copy of process.env: compare with what the worker started with)
    expect(runSync(['sh', '-c', 'echo "$PATH|$HOME"']).stdout.trim()).toBe(`${process.env.PATH}|${process.env.HOME}`);
  });

  test('a non-zero exit, a signal and a missing command are results, not exceptions', () => {
    const exit = runSync(['sh', '-c', 'echo out; echo err >&2; exit 3'], { env: SH_ENV });
    expect(exit).toMatchObject({ status: 3, signal: null, stdout: 'out\n', stderr: 'err\n', timedOut: false });
    expect(exit.error).toBeUndefined();
    const killed = runSync(['sh', '-c', 'kill -TERM $$'], { env: SH_ENV });
    expect(killed).toMatchObject({ status: -1, signal: 'SIGTERM', timedOut: false });
    const missing = runSync(['/nonexistent/gos-no-such-command'], { env: SH_ENV });
    expect(missing.status).toBe(-1);
    expect((missing.error as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  test('a timeout (ms) kills the whole process group with group: true, the command alone without', () => {
    const pidFile = path.join(tmp, 'grandchild');
    const t0 = Date.now();
    const r = runSync(['sh', '-c', GRANDCHILD, 'sh', pidFile], { env: SH_ENV, timeoutMs: 500, group: true });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r).toMatchObject({ status: -1, signal: 'SIGKILL', timedOut: true });
    expect(r.error).toBeUndefined();
    const grandchild = pidIn(pidFile);
    return waitGone(grandchild).then((gone) => expect(gone).toBe(true));
  });

  test('without group, a timeout leaves the command\'s children running (why group exists)', async () => {
    const pidFile = path.join(tmp, 'grandchild');
    // The grandchild's stdout is not our pipe, or spawnSync would wait for it.
    const r = runSync(['sh', '-c', 'sleep 60 >/dev/null 2>&1 & echo $! > "$1"; wait', 'sh', pidFile], { env: SH_ENV, timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    const grandchild = pidIn(pidFile);
    try {
      expect(alive(grandchild)).toBe(true);
    } finally {
      process.kill(grandchild, 'SIGKILL');
    }
  });
});

describe('run (async)', () => {
  test('collects output, passes lines as they come, takes input', async () => {
    const lines: string[] = [];
    const r = await run(['sh', '-c', 'echo one; echo two >&2; cat'], { env: SH_ENV, input: 'three\n', onLine: (l) => lines.push(l) });
    expect(r).toMatchObject({ status: 0, signal: null, stdout: 'one\nthree\n', stderr: 'two\n', timedOut: false });
    expect(lines.sort()).toEqual(['one', 'three', 'two']);
    expect(r.seconds).toBeGreaterThan(0);
  });

  test('a timeout kills the whole process group', async () => {
    const pidFile = path.join(tmp, 'grandchild');
    const r = await run(['sh', '-c', GRANDCHILD, 'sh', pidFile], { env: SH_ENV, timeoutMs: 500 });
    expect(r).toMatchObject({ status: -1, signal: 'SIGKILL', timedOut: true });
    expect(await waitGone(pidIn(pidFile))).toBe(true);
  });

  test('an abort sends killSignal to the group, and drainMs waits for the group to end', async () => {
    const pidFile = path.join(tmp, 'grandchild');
    const trapped = path.join(tmp, 'trapped');
    const ac = new AbortController();
    // The grandchild traps TERM and writes a file while ending: it must have ended when run resolves.
    const script = `sh -c 'trap "sleep 0.3; echo done > \\"$2\\"; exit 0" TERM; echo $$ > "$1"; while :; do sleep 0.1; done' sh "$1" "$2" & wait`;
    const p = run(['sh', '-c', script, 'sh', pidFile, trapped], { env: SH_ENV, signal: ac.signal, killSignal: 'SIGTERM', drainMs: 10_000 });
    for (let i = 0; i < 50 && !fs.existsSync(pidFile); i++) await new Promise((res) => setTimeout(res, 100));
    ac.abort();
    const r = await p;
    expect(r.signal === 'SIGTERM' || r.status === 0).toBe(true);
    expect(fs.readFileSync(trapped, 'utf8')).toBe('done\n');
    expect(alive(pidIn(pidFile))).toBe(false);
  });

  test('a missing command resolves with error set', async () => {
    const r = await run(['/nonexistent/gos-no-such-command'], { env: SH_ENV });
    expect(r.status).toBe(-1);
    expect((r.error as NodeJS.ErrnoException).code).toBe('ENOENT');
  });
});

describe('failureMessage', () => {
  const base: RunResult = { status: 0, signal: null, stdout: '', stderr: '', timedOut: false, seconds: 1 };
  test('undefined for success; command, how it ended, stderr last lines otherwise', () => {
    expect(failureMessage(['true'], base)).toBeUndefined();
    const stderr = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    expect(failureMessage(['losetup', '--find', 'a file'], { ...base, status: 1, stderr }, { lines: 2 })).toBe("losetup --find 'a file' exited with 1: line 19\nline 20");
    expect(failureMessage(['x'], { ...base, status: -1, signal: 'SIGKILL' })).toBe('x was killed by SIGKILL');
    expect(failureMessage(['x'], { ...base, status: -1, signal: 'SIGKILL', timedOut: true }, { timeoutMs: 30_000 })).toBe('x did not finish within 30 s');
    expect(failureMessage(['x'], { ...base, status: -1, error: new Error('spawn x ENOENT') })).toBe('x could not be started (spawn x ENOENT)');
  });

  test('matches a real failing run', () => {
    const r = runSync(['sh', '-c', 'echo bad >&2; exit 2'], { env: SH_ENV });
    expect(failureMessage(['sh', '-c', 'echo bad >&2; exit 2'], r)).toBe(`${commandLine(['sh', '-c', 'echo bad >&2; exit 2'])} exited with 2: bad`);
  });
});

describe('onPath: a command as execvp finds it', () => {
  it('the first directory with a regular file this user may execute; not a file without x, not a directory', () => {
    const [a, b, c] = ['a', 'b', 'c'].map((d) => path.join(tmp, d));
    for (const d of [a, b, c]) fs.mkdirSync(d);
    fs.writeFileSync(path.join(a, 'tool'), '#!/bin/sh\n', { mode: 0o644 });
    fs.mkdirSync(path.join(b, 'tool'));
    fs.writeFileSync(path.join(c, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
    expect(onPath('tool', [a, b, c].join(':'))).toBe(path.join(c, 'tool'));
    expect(onPath('tool', [a, b].join(':'))).toBeUndefined();
    expect(onPath('sh', undefined)).toMatch(/\/sh$/);
  });
});
