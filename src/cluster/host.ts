/**
 * Processes, namespaces and loop devices as the host kernel shows them (/proc, /sys, losetup):
 * the few primitives the cluster box is built from.
 */
import { spawnSync, SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

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

/** True when a process with this host PID exists (zombies count as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** argv of a host process ([] when gone). */
export function cmdline(pid: number): string[] {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').slice(0, -1);
  } catch {
    return [];
  }
}

/** The inode naming a process's namespace of this kind ("pid", "net", "mnt"), or null when gone. */
export function namespaceOf(pid: number, kind: string): string | null {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return null;
  }
}

/** Host PIDs of every process whose `kind` namespace is `ns` (processes of a pid namespace: kind "pid"). */
export function processesIn(kind: string, ns: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (namespaceOf(pid, kind) === ns && alive(pid)) out.push(pid);
  }
  return out;
}

/** Host PIDs of all living descendants of `pid` (through /proc/PID/task/TID/children). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift() as number;
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      let kids = '';
      try {
        kids = fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.split(/\s+/).filter(Boolean)) {
        out.push(Number(k));
        queue.push(Number(k));
      }
    }
  }
  return out;
}

/** The process name (comm) of a host PID ("" when gone). */
export function comm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Wait until `check` is true, polling every `stepMs`; false after `seconds`. */
export function waitFor(check: () => boolean, seconds: number, stepMs = 50): boolean {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    if (check()) return true;
    if (Date.now() > end) return false;
    sleepMs(stepMs);
  }
}

export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
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

/** "MAJ:MIN" of a stat's device number (Linux encoding, as losetup prints it). */
export function devString(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
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

/** Mount points (host mount namespace) at or below `dir`. */
export function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = f[4].replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp === dir || mp.startsWith(dir + '/')) out.push(mp);
  }
  return out;
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
