/** The built CLI, spawned as a user would run it. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { BIN, REPO, runCli, tempDir } from './helpers/cli';

const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string; engines: { node: string } };

let work: string;
beforeAll(() => {
  if (!fs.existsSync(path.join(REPO, 'dist', 'main.js'))) throw new Error('run `npm run build` first (npm test does)');
});
beforeEach(() => {
  work = tempDir();
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

describe('ganeti-os CLI', () => {
  it('--version prints the package version', () => {
    for (const flag of ['--version', '-V']) {
      const r = runCli([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(pkg.version);
    }
  });

  it('--help lists the commands; every command has help', () => {
    const r = runCli(['--help']);
    expect(r.code).toBe(0);
    const commands = [...r.stdout.matchAll(/^ {2}([a-z-]+)(?: \[options\])?(?: [<[]|\s{2,})/gm)].map((m) => m[1]).filter((c) => c !== 'help');
    expect(commands).toEqual(expect.arrayContaining(['new', 'info']));
    for (const c of commands) {
      const h = runCli([c, '--help']);
      expect(h.code).toBe(0);
      expect(h.stdout).toMatch(new RegExp(`^Usage: ganeti-os ${c}`));
    }
  });

  it('exits 2 with a hint on an unknown command or option, 0 with no error on help', () => {
    let r = runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'frobnicate'/);
    r = runCli(['new']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing required argument 'name'/);
    r = runCli(['new', 'x', '--api']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--api <list>' argument missing/);
  });

  it('never prompts or hangs without a terminal, even with stdin left open', async () => {
    const child = spawn(process.execPath, [BIN, 'new', 'piped', '--template', 'blank'], { cwd: work, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 20000);
      child.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    expect(code).toBe(0);
    expect(out).toMatch(/Created .*piped/);
    expect(fs.existsSync(path.join(work, 'piped', 'create'))).toBe(true);
  });

  it('new --json prints one JSON document on stdout and narration nowhere else', () => {
    const r = runCli(['new', 'jsonos', '--template', 'blank', '--yes', '--json'], { cwd: work });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).root).toBe(path.join(work, 'jsonos'));
    expect(r.stderr).toBe('');
  });

  it('info reads a definition, as text and as JSON', () => {
    expect(runCli(['new', 'infos', '--template', 'blank', '--yes', '--param', 'size=Root size'], { cwd: work }).code).toBe(0);
    const text = runCli(['info', 'infos'], { cwd: work });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/status: +valid/);
    expect(text.stdout).toMatch(/size +Root size/);
    const json = runCli(['info', path.join(work, 'infos'), '--json']);
    const doc = JSON.parse(json.stdout);
    expect(doc).toMatchObject({ name: 'infos', valid: true, apiVersions: [20, 15, 10], variants: ['default'], trusted: true });
    expect(doc.parameters).toEqual([{ name: 'size', description: 'Root size' }]);
    expect(doc.scripts.create).toMatchObject({ mode: '0755', executable: true });
    const missing = runCli(['info', path.join(work, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/does not exist/);
  });

  it('runs from any working directory and respects -C', () => {
    const r = runCli(['new', 'elsewhere', '--template', 'blank', '--yes', '-C', work], { cwd: '/' });
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(work, 'elsewhere', 'ganeti_api_version'))).toBe(true);
  });

  it('stops quietly when its reader goes away (ganeti-os --help | head -1)', () => {
    const r = spawnSync('bash', ['-c', `"$0" "$1" --help | head -1; echo "status=\${PIPESTATUS[0]}"`, process.execPath, BIN], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/^Usage: ganeti-os/);
    expect(r.stdout).toMatch(/status=0$/m);
    expect(r.stderr).not.toMatch(/EPIPE/);
  });

  it('declares an honest Node engine', () => {
    expect(pkg.engines.node).toMatch(/^>=20/);
  });
});
