/** Shared pieces of the maintenance tests: a captured context, temp trees, tree hashes, fixtures. */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Context } from '../src/context';
import { reportError } from '../src/main';
import { noPrompter } from '../src/prompter';

export interface Captured {
  ctx: Context;
  out: () => string;
  err: () => string;
}

export function captureContext(cwd: string): Captured {
  let out = '';
  let err = '';
  const ctx: Context = {
    cwd,
    env: { NO_COLOR: '1' },
    interactive: false,
    prompter: noPrompter,
    log: { info: (m) => void (err += m + '\n'), warn: (m) => void (err += `warning: ${m}\n`) },
    out: { write: (t) => void (out += t) },
  };
  return { ctx, out: () => out, err: () => err };
}

/** Run a command function as main would: returns the exit code and what it printed. */
export async function runCommand<O>(fn: (ctx: Context, opts: O) => Promise<void>, cwd: string, opts: O): Promise<{ code: number; out: string; err: string }> {
  const c = captureContext(cwd);
  let code = 0;
  try {
    await fn(c.ctx, opts);
  } catch (e) {
    code = reportError(c.ctx, e);
  }
  return { code, out: c.out(), err: c.err() };
}

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ganeti-os-${tag}-`));
}

/** Every entry under the given roots: type, mode, content hash or link target. */
export function treeHash(...roots: string[]): string {
  const lines: string[] = [];
  const walk = (root: string, dir: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p);
      const rel = path.relative(root, p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) lines.push(`${rel} link ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        lines.push(`${rel} dir ${mode}`);
        walk(root, p);
      } else lines.push(`${rel} file ${mode} ${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`);
    }
  };
  for (const r of roots) {
    lines.push(`# ${r}`);
    walk(r, r);
  }
  return lines.join('\n');
}

export const FOREIGN_FIXTURE = path.join(__dirname, 'fixtures', 'foreign-debootstrap');

/**
 * A copy of the ganeti-instance-debootstrap fixture in `parent`: os/debootstrap with its
 * variants.list a symlink to etc/variants.list, as the Debian package installs it.
 */
export function foreignCopy(parent: string): { os: string; etc: string } {
  const osDir = path.join(parent, 'os', 'debootstrap');
  const etc = path.join(parent, 'etc');
  fs.cpSync(path.join(FOREIGN_FIXTURE, 'os'), path.join(parent, 'os'), { recursive: true });
  fs.cpSync(path.join(FOREIGN_FIXTURE, 'etc'), etc, { recursive: true });
  for (const s of ['create', 'export', 'import', 'rename', 'verify']) fs.chmodSync(path.join(osDir, s), 0o755);
  for (const f of ['common.sh', 'ganeti_api_version', 'parameters.list']) fs.chmodSync(path.join(osDir, f), 0o644);
  fs.symlinkSync(path.join(etc, 'variants.list'), path.join(osDir, 'variants.list'));
  return { os: osDir, etc };
}

export function read(p: string): string {
  return fs.readFileSync(p, 'utf8');
}

export const REPO = path.resolve(__dirname, '..');
export const BIN = path.join(REPO, 'bin', 'ganeti-os.js');

/** Spawn the built CLI as a user would (stdin not a terminal). */
export function runCli(args: string[], cwd: string): { code: number; stdout: string; stderr: string } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
