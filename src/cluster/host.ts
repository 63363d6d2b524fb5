/**
 * Processes, namespaces and loop devices as the host kernel shows them (/proc, /sys, losetup):
 * the few primitives the cluster box is built from.
 */
import { spawnSync, SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { devString } from '../system/kernel';

export { alive, cmdline, comm, descendants, devString, mountsUnder, namespaceOf, processesIn, sleepMs, waitFor } from '../system/kernel';

/** A clean environment for everything started inside the box (daemons hand theirs on to OS scripts). */
export const CLEAN_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C',
  LC_ALL: 'C',
};

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
  /** Seconds the command took. */
  seconds: number;
}

/**
 * Run argv to completion with a clean environment; never throws for a non-zero exit.
 * `timeoutSeconds` kills it (status then -1).
 */
export function run(argv: string[], opts: { input?: string; timeoutSeconds?: number; env?: Record<string, string> } = {}): RunResult {
  const t0 = process.hrtime.bigint();
  const o: SpawnSyncOptions = {
    encoding: 'utf8',
    input: opts.input,
    env: opts.env ?? CLEAN_ENV,
    maxBuffer: 64 * 1024 * 1024,
    timeout: opts.timeoutSeconds ? opts.timeoutSeconds * 1000 : undefined,
    killSignal: 'SIGKILL',
  };
  const r = spawnSync(argv[0], argv.slice(1), o);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const err = r.error ? `${argv[0]}: ${r.error.message}\n` : '';
  return { status: r.status ?? -1, stdout: String(r.stdout ?? ''), stderr: err + String(r.stderr ?? ''), seconds };
}

export interface LoopDevice {
  name: string;
  backFile: string;
  /** Device number of the backing file's filesystem, "MAJ:MIN". */
  backDev: string;
  backIno: number;
}

/** Every attached loop device (losetup --list). */
export function loopDevices(): LoopDevice[] {
  const r = run(['losetup', '--list', '--json', '--output', 'NAME,BACK-MAJ:MIN,BACK-INO,BACK-FILE']);
  if (r.status !== 0 || !r.stdout.trim()) return [];
  const rows = (JSON.parse(r.stdout) as { loopdevices?: Record<string, string | number | null>[] }).loopdevices ?? [];
  return rows.map((row) => ({
    name: String(row.name),
    backDev: String(row['back-maj:min'] ?? '').trim(),
    backIno: Number(row['back-ino'] ?? 0),
    backFile: String(row['back-file'] ?? ''),
  }));
}

/**
 * Loop devices whose backing file lies inside `dir` (matched by device and inode, so files
 * seen through the box's bind mounts and overlays count too; `skip` names subtrees not walked).
 */
export function loopsBackedUnder(dir: string, skip: (p: string) => boolean = () => false): LoopDevice[] {
  const loops = loopDevices();
  if (!loops.length) return [];
  const inodes = new Set<string>();
  const walk = (p: string): void => {
    let st: fs.BigIntStats;
    try {
      st = fs.lstatSync(p, { bigint: true });
    } catch {
      return;
    }
    if (st.isFile()) inodes.add(`${devString(st.dev)}/${st.ino}`).add(`ino/${st.ino}`);
    if (!st.isDirectory() || skip(p)) return;
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(p);
    } catch {
      return;
    }
    for (const e of entries) walk(path.join(p, e));
  };
  walk(dir);
  return loops.filter(
    (l) => inodes.has(`${l.backDev}/${l.backIno}`) || (l.backDev.startsWith('0:') && /^\/(etc|usr|var)\//.test(l.backFile) && inodes.has(`ino/${l.backIno}`)) || l.backFile.startsWith(dir + '/'),
  );
}

/** Whether `cmd` is an executable on the clean PATH. */
export function haveCommand(cmd: string): boolean {
  return CLEAN_ENV.PATH.split(':').some((d) => {
    try {
      fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
