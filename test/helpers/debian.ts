/**
 * A working directory for system tests of the debian template: a definition written by
 * `ganeti-os new` (bin/ganeti-os.js, so build first), a private TMPDIR for its scripts (the leak
 * check looks there), a log directory for Ganeti's OS logs, and a release that never deletes
 * through a mount or a loop device a failed test left behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSync } from '../../src/system/process';
import { releaseResources } from './disks';
import { runCliOk, tempDir } from './cli';
import { nodeMirror } from '../../src/debian/apt-sources';


export interface DebianWorkspace {
  /** The test's directory (under the system's temporary directory). */
  work: string;
  /** TMPDIR of the definition's scripts. */
  tmp: string;
  /** Where Ganeti writes the OS logs (create, rename). */
  logdir: string;
  /** The definition, named debian-os. */
  osDir: string;
}

/**
 * A new workspace (tempDir `tag`), its definition's defaults.conf ending with TMPDIR and the
 * extra lines given. Throws when `ganeti-os new` fails.
 */
export function debianWorkspace(tag: string, extraConfig: string[] = []): DebianWorkspace {
  const work = tempDir(tag);
  const tmp = path.join(work, 'tmp');
  fs.mkdirSync(tmp);
  runCliOk(['new', 'debian-os', '--yes'], { cwd: work, env: process.env, timeout: 0 });
  const osDir = path.join(work, 'debian-os');
  fs.appendFileSync(path.join(osDir, 'defaults.conf'), [`TMPDIR=${tmp}`, ...extraConfig, ''].join('\n'));
  return { work, tmp, logdir: path.join(work, 'log'), osDir };
}

/** Unmounts and detaches what is left under the workspace, then removes it. */
export function releaseWorkspace(ws: DebianWorkspace | undefined): void {
  if (!ws) return;
  releaseResources(ws.work, ws.tmp);
  fs.rmSync(ws.work, { recursive: true, force: true });
}

/** The newest Ganeti OS log whose name starts with prefix ('add-', 'rename-'). */
export function newestLog(logdir: string, prefix: string): string {
  const f = fs.readdirSync(logdir).filter((n) => n.startsWith(prefix)).sort().pop();
  if (!f) throw new Error(`no ${prefix}* log in ${logdir}`);
  return fs.readFileSync(path.join(logdir, f), 'utf8');
}

/**
 * Whether the node's mirror (its apt sources, src/debian/apt-sources.ts) serves suite with a
 * Release file past its Valid-Until date, as a frozen mirror does for sid and testing a week
 * after it was taken. Throws when the mirror or its InRelease cannot be read.
 */
export function releaseExpired(suite: string, now = new Date()): boolean {
  const mirror = nodeMirror();
  if (!mirror) throw new Error('no Debian mirror in this node\'s apt sources');
  const r = runSync(['curl', '-fsS', '-m', '60', `${mirror.replace(/\/$/, '')}/dists/${suite}/InRelease`], { stdin: 'pipe' });
  if (r.status !== 0) throw new Error(`reading ${suite}'s InRelease from ${mirror}: ${r.stderr || r.error}`);
  const until = /^Valid-Until: (.+)$/m.exec(r.stdout)?.[1];
  return until !== undefined && new Date(until).getTime() < now.getTime();
}
