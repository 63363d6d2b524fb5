/**
 * Helpers for tests of the cluster box: the CLI against a state directory, and a snapshot of
 * what the box must never change on the host (scoped so other engineers' loop devices, mounts
 * and processes on this machine do not count).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cmdline, loopDevices, mountTable } from '../../src/system/kernel';
import { runCli } from './cli';
import { sh } from './disks';

export const BOX_NEED = { root: true, commands: ['gnt-cluster', 'ganeti-luxid', 'sshd', 'socat', 'unshare', 'nsenter', 'losetup'] };

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** `ganeti-os cluster ARGS --state DIR` (the built CLI), with a minimal environment plus `env`. */
export function box(args: string[], stateDir: string, env: Record<string, string> = {}, timeout = 300000): Result {
  const [action, ...rest] = args;
  const r = runCli(['cluster', action, '--state', stateDir, ...rest], { env: { HOME: '/root', ...env }, timeout });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** One step of `ganeti-os test --json` (src/lifecycle/lifecycle.ts StepResult). */
export interface LifecycleStep {
  step: string;
  title: string;
  status: 'passed' | 'failed' | 'skipped';
  seconds: number;
  detail: string;
  command?: string[];
  checks?: { name: string; ok: boolean | null; detail: string }[];
}

/** One run of `ganeti-os test --json` (one variant). */
export interface LifecycleRun {
  backend: string;
  os: string;
  variant: string | null;
  /** The Ganeti release the run followed (the box's). */
  ganeti: string;
  ok: boolean;
  steps: LifecycleStep[];
}

/**
 * `ganeti-os test --cluster --state DIR --os-dir OSDIR --json ARGS` (the built CLI): its exit
 * code, its one run (throws when there is no JSON document), and stderr.
 */
export function testOnBox(osDir: string, args: string[], stateDir: string, timeout = 1800000): { code: number; run: LifecycleRun; stderr: string } {
  const r = runCli(['test', '--cluster', '--state', stateDir, '--os-dir', osDir, '--json', ...args], { env: { HOME: '/root' }, timeout });
  let doc: { runs: LifecycleRun[] };
  try {
    doc = JSON.parse(r.stdout) as { runs: LifecycleRun[] };
  } catch {
    throw new Error(`no JSON from test --cluster (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, run: doc.runs[0], stderr: r.stderr };
}

/** Run a command on the box's master with `cluster exec`; throws with its output on failure. */
export function onBox(stateDir: string, argv: string[]): string {
  const r = box(['exec', '--', ...argv], stateDir);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A digest of a tree: every path with its type, mode, size, mtime and (for files) content hash. */
function treeDigest(root: string): string {
  const lines: string[] = [];
  const walk = (p: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      lines.push(`${p} absent`);
      return;
    }
    let extra = '';
    if (st.isFile()) extra = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    if (st.isSymbolicLink()) extra = fs.readlinkSync(p);
    // A directory's mtime is left out: other engineers' tests create and remove their own entries in /etc/ganeti.
    lines.push(`${p} ${st.mode} ${st.isDirectory() ? '' : `${st.size} ${st.mtimeMs}`} ${extra}`);
    if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
  };
  walk(root);
  return lines.join('\n');
}

/** The paths the box mounts over inside its nodes: none of them may gain a mount on the host. */
const MOUNT_POINTS = ['/', '/etc', '/usr', '/var', '/var/lib/ganeti', '/var/log/ganeti', '/srv', '/srv/ganeti', '/root', '/tmp', '/run', '/run/lock', '/run/ganeti-os-box', '/sys', '/dev/shm', '/proc'];

export interface HostSnapshot {
  trees: Record<string, string>;
  mounts: string[];
  links: string[];
  boxLoops: string[];
  boxProcesses: string[];
}

const BOX_LINK = /^(sw0|gnt-br0|n\d+|eth0@)/;

/** What the box must leave as it found it (scoped to the box's own names and state directory). */
export function hostSnapshot(stateDirs: string[]): HostSnapshot {
  const trees: Record<string, string> = {};
  for (const t of ['/etc/ganeti', '/var/lib/ganeti', '/var/log/ganeti', '/srv/ganeti', '/etc/hosts', '/etc/hostname', '/root/.ssh', '/run/ganeti']) trees[t] = treeDigest(t);
  trees['/run/lock (ganeti)'] = fs.readdirSync('/run/lock').filter((e) => /ganeti/.test(e)).join(' ');
  const mounts = mountTable()
    .filter((m) => MOUNT_POINTS.includes(m.target) || stateDirs.some((d) => m.target.startsWith(d)))
    .map((m) => [m.target, m.options, m.optional, '-', m.fsType, m.source, m.superOptions].join(' '));
  const links = sh('ip', ['-o', 'link', 'show'])
    .split('\n')
    .map((l) => l.split(': ')[1] ?? '')
    .filter((n) => BOX_LINK.test(n))
    .concat(sh('ip', ['-o', '-4', 'addr', 'show']).split('\n').filter((l) => l.includes('198.51.100.')));
  const boxLoops = loopDevices()
    .filter((l) => l.backFile.includes('/srv/volumes/') || stateDirs.some((d) => l.backFile.includes(d)))
    .map((l) => `${l.name} ${l.backFile}`);
  const boxProcesses: string[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = cmdline(Number(e)).join(' ');
    if (stateDirs.some((d) => cmd.includes(d))) boxProcesses.push(`${e} ${cmd}`);
  }
  return { trees, mounts, links, boxLoops, boxProcesses };
}

/**
 * The host as `before` showed it, for this box: the same trees and mounts, and no loop device,
 * link or process that was not there before. Another box on the machine may go down meanwhile
 * (its loop devices and links vanish), which says nothing about this one.
 */
export function expectHostAsBefore(before: HostSnapshot, stateDirs: string[]): void {
  const now = hostSnapshot(stateDirs);
  const added = (a: string[], b: string[]) => a.filter((x) => !b.includes(x));
  expect({ trees: now.trees, mounts: now.mounts }).toEqual({ trees: before.trees, mounts: before.mounts });
  expect({ links: added(now.links, before.links), boxLoops: added(now.boxLoops, before.boxLoops), boxProcesses: added(now.boxProcesses, before.boxProcesses) }).toEqual({
    links: [],
    boxLoops: [],
    boxProcesses: [],
  });
}

/** Wait (polling) until fn is true; false after `seconds`. */
export async function eventually(fn: () => boolean, seconds: number): Promise<boolean> {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    if (fn()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return fn();
}
