/**
 * A node root for a Ganeti release other than the host's: a Debian system of the release's own
 * suite (3.1: trixie, 3.0: bookworm) built once by mmdebstrap from this node's mirror, holding
 * Ganeti, sshd, socat, iproute2, QEMU and what the templates' scripts call. The box's nodes then
 * overlay its /usr, /etc and /var instead of the host's (files.ts NODE_SETUP), so every command a
 * node runs is the release's.
 *
 * Roots are cached in one directory (default /var/cache/ganeti-os/cluster-roots) and reused:
 * `ganeti-<release>-<key>-<built>` where key is a digest of what went into it (suite, mirror,
 * packages, this module's format) and built the build time (Unix seconds). A root is stale when
 * its key changed (another package list or mirror) or it is older than ROOT_MAX_AGE_DAYS; then a
 * new one is built next to it, and old roots no running box mounts are removed. A build goes to
 * a `.building-…-PID` directory inside private mount and PID namespaces (mmdebstrap's mounts and
 * processes end with it) and is renamed into place only once complete; on any failure or
 * interruption the partial directory is removed.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { nodeMirror } from '../debian/apt-sources';
import { GanetiRelease, installedRelease, releaseInfo } from '../ganeti/releases';
import { CLEAN_ENV, haveCommand } from './host';
import { alive, atOrUnder, killGroup, Mount, mountTable, namespaceOf, pids } from '../system/kernel';
import { startProcess } from '../system/process';

export const DEFAULT_ROOT_CACHE = '/var/cache/ganeti-os/cluster-roots';

/** A root older than this is rebuilt (its packages would miss a point release's fixes). */
export const ROOT_MAX_AGE_DAYS = 14;

/** Changing what a root holds or how it is built: bump, so older roots count as stale. */
const ROOT_FORMAT = 2;

/** Debian's keyring for its archive (debian-archive-keyring): mmdebstrap checks the suite with it. */
export const ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/**
 * What a node needs besides the base system: Ganeti (the meta package: gnt-* commands, the
 * Haskell daemons, the users its postinst makes), sshd with SFTP (Ganeti copies files with scp),
 * socat (import/export), iproute2 (addresses, bridges), procps, QEMU (kvm is enabled: verify
 * checks /usr/bin/kvm, `start` runs it) and OVMF (UEFI firmware and its variable stores, for
 * `test --cluster --firmware uefi|secureboot`).
 */
export const NODE_PACKAGES = ['ganeti', 'openssh-server', 'openssh-sftp-server', 'openssh-client', 'iproute2', 'socat', 'procps', 'qemu-system-x86', 'ovmf'];

/**
 * What the OS scripts of ganeti-os's templates call on a node, which a host node has from the
 * templates' package dependencies and a minbase root lacks: the debian template's installer
 * (mmdebstrap; its cache key names the installer, so a node with another one would not find the
 * base system the host filled), e2fsprogs (mke2fs, e2fsck, resize2fs, tune2fs, e2image,
 * debugfs), fdisk (sfdisk), xz-utils and zstd (streams and compressed images); the image
 * template's qemu-utils (qemu-img), dosfstools and mtools (a vfat seed disk), xorriso (an ISO
 * seed) and curl (URL images). losetup, blkid, partx, wipefs, flock and python3 come with the
 * base system and Ganeti.
 */
export const SCRIPT_PACKAGES = ['mmdebstrap', 'e2fsprogs', 'fdisk', 'xz-utils', 'zstd', 'qemu-utils', 'dosfstools', 'mtools', 'xorriso', 'curl'];

/** Everything a root holds besides the base system (part of its cache key). */
export const ROOT_PACKAGES = [...NODE_PACKAGES, ...SCRIPT_PACKAGES];

/** The box's root cache: `--cache` (relative to cwd), else $GANETI_OS_CLUSTER_CACHE, else DEFAULT_ROOT_CACHE. */
export function resolveRootCache(cwd: string, cache: string | undefined, env: Record<string, string | undefined>): string {
  return path.resolve(cwd, cache ?? env.GANETI_OS_CLUSTER_CACHE ?? DEFAULT_ROOT_CACHE);
}

export interface RootRecipe {
  release: GanetiRelease;
  suite: string;
  mirror: string;
  packages: string[];
  /** Digest of everything above and ROOT_FORMAT (12 hex digits). */
  key: string;
}

/** What a root for `release` is built from; UserError when the node's apt sources name no mirror. */
export function rootRecipe(release: GanetiRelease, aptEtc = '/etc/apt'): RootRecipe {
  const mirror = nodeMirror(aptEtc);
  if (!mirror) {
    throw new UserError(`cannot build a Ganeti ${release} node root: this node's apt sources (${aptEtc}) name no Debian mirror to download ${releaseInfo(release).debianSuite} from`);
  }
  const suite = releaseInfo(release).debianSuite;
  const packages = [...ROOT_PACKAGES].sort();
  const key = crypto.createHash('sha256').update(JSON.stringify({ ROOT_FORMAT, release, suite, mirror, packages })).digest('hex').slice(0, 12);
  return { release, suite, mirror, packages, key };
}

export interface RootInfo {
  dir: string;
  release: GanetiRelease;
  key: string;
  /** Unix seconds. */
  built: number;
}

const ROOT_NAME = /^ganeti-(\d+\.\d+)-([0-9a-f]{12})-(\d+)$/;
const BUILDING_NAME = /^\.building-.*-(\d+)$/;

/** Complete roots in the cache (a record file beside each marks it complete), newest first. */
export function cachedRoots(cache: string): RootInfo[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(cache);
  } catch {
    return [];
  }
  const out: RootInfo[] = [];
  for (const n of names) {
    const m = ROOT_NAME.exec(n);
    if (!m || !fs.existsSync(path.join(cache, `${n}.json`))) continue;
    out.push({ dir: path.join(cache, n), release: m[1] as GanetiRelease, key: m[2], built: Number(m[3]) });
  }
  return out.sort((a, b) => b.built - a.built);
}

/** Whether a root can be reused now: same key, not older than ROOT_MAX_AGE_DAYS. */
export function fresh(root: RootInfo, recipe: RootRecipe, nowSeconds = Date.now() / 1000): boolean {
  return root.key === recipe.key && root.release === recipe.release && nowSeconds - root.built < ROOT_MAX_AGE_DAYS * 86400;
}

/**
 * Where `dir` lies as mountinfo names it: the device ("MAJ:MIN") and the path inside that
 * filesystem (what a bind mount of it shows as its root, in any mount namespace).
 */
function fsLocation(dir: string): { dev: string; root: string } | null {
  let best: Mount | null = null;
  for (const m of mountTable()) if (atOrUnder(dir, m.target) && (!best || m.target.length >= best.target.length)) best = m;
  if (!best) return null;
  return { dev: best.devNo, root: path.posix.join(best.root, path.posix.relative(best.target, dir)) };
}

/** Whether a mount namespace of any process on the host mounts `dir` or something in it (a running box's nodes bind their root). */
export function rootInUse(dir: string): boolean {
  const where = fsLocation(dir);
  const seen = new Set<string>();
  for (const pid of pids()) {
    const ns = namespaceOf(pid, 'mnt');
    if (!ns || seen.has(ns)) continue;
    seen.add(ns);
    for (const m of mountTable(pid)) {
      if (where && m.devNo === where.dev && (m.root === where.root || m.root.startsWith(where.root + '/'))) return true;
      if (m.superOptions.includes(`=${dir}/`) || m.options.includes(`=${dir}/`)) return true;
    }
  }
  return false;
}

/** Files a node's daemons and gnt-* commands need (NODE_PACKAGES). */
const NODE_FILES = ['usr/sbin/gnt-cluster', 'usr/sbin/ganeti-luxid', 'usr/lib/ganeti/daemon-util', 'usr/sbin/sshd', 'usr/lib/openssh/sftp-server', 'usr/bin/socat', 'usr/bin/kvm', 'usr/sbin/ip'];

/** One command of each of SCRIPT_PACKAGES: the templates' scripts fail half-way without them. */
const SCRIPT_FILES = ['usr/bin/mmdebstrap', 'usr/sbin/mke2fs', 'usr/sbin/resize2fs', 'usr/sbin/sfdisk', 'usr/bin/xz', 'usr/bin/zstd', 'usr/bin/qemu-img', 'usr/sbin/mkfs.vfat', 'usr/bin/mcopy', 'usr/bin/xorriso', 'usr/bin/curl'];

/** What a root must hold for a box (empty when everything is there). */
export function rootLacks(dir: string, release: GanetiRelease): string[] {
  const lack: string[] = [];
  if (installedRelease(dir) !== release) lack.push(`Ganeti ${release}'s code (usr/share/ganeti/${release})`);
  // lstat: links such as usr/lib/ganeti/default point at absolute paths, valid only inside the root.
  const present = (f: string) => {
    try {
      fs.lstatSync(path.join(dir, f));
      return true;
    } catch {
      return false;
    }
  };
  for (const f of [...NODE_FILES, ...SCRIPT_FILES]) {
    if (!present(f)) lack.push(f);
  }
  let etcSsh: string[] = [];
  try {
    etcSsh = fs.readdirSync(path.join(dir, 'etc', 'ssh'));
  } catch {
    /* none */
  }
  if (!etcSsh.some((f) => /^ssh_host_\w+_key$/.test(f))) lack.push('SSH host keys (etc/ssh/ssh_host_*_key)');
  return lack;
}

/** What is missing on the host to build a root (empty when nothing). */
export function buildPreflight(): string[] {
  const lack: string[] = [];
  if (!haveCommand('mmdebstrap')) lack.push("Debian package 'mmdebstrap' (builds the node root)");
  if (!fs.existsSync(ARCHIVE_KEYRING)) lack.push(`Debian package 'debian-archive-keyring' (${ARCHIVE_KEYRING})`);
  return lack;
}

export interface NodeRootOptions {
  release: GanetiRelease;
  cache: string;
  log: (line: string) => void;
  /** Polled while building: true once the caller was asked to stop. */
  interrupted?: () => boolean;
  /** For tests: the apt configuration directory the mirror is read from. */
  aptEtc?: string;
}

/** The command line that builds a root (run inside private mount and PID namespaces). */
export function buildArgv(recipe: RootRecipe, target: string): string[] {
  return [
    'unshare', '--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', '--mount-proc',
    'mmdebstrap',
    '--mode=root',
    '--variant=minbase',
    '--aptopt=Apt::Install-Recommends "false"',
    `--include=${recipe.packages.join(',')}`,
    recipe.suite,
    target,
    `deb [signed-by=${ARCHIVE_KEYRING}] ${recipe.mirror} ${recipe.suite} main`,
  ];
}

/**
 * The root for `release`: the newest fresh one in the cache, else one built now (waiting while
 * another process builds the same one). Out: the root and whether it was built now. Throws
 * UserError with the cause (no mirror, mmdebstrap's last lines, interrupted) after removing the
 * partial directory.
 */
export async function nodeRoot(o: NodeRootOptions): Promise<{ root: RootInfo; built: boolean; seconds: number }> {
  const t0 = Date.now();
  const recipe = rootRecipe(o.release, o.aptEtc);
  const reuse = () => cachedRoots(o.cache).find((r) => fresh(r, recipe));
  const found = reuse();
  if (found) {
    const lack = rootLacks(found.dir, o.release);
    if (!lack.length) return { root: found, built: false, seconds: (Date.now() - t0) / 1000 };
    o.log(`the cached root ${found.dir} lacks ${lack.join(', ')}: building a new one`);
  }
  const lack = buildPreflight();
  if (lack.length) throw new UserError(`cannot build a Ganeti ${o.release} node root: missing ${lack.join('; ')}`);
  fs.mkdirSync(o.cache, { recursive: true, mode: 0o755 });
  const unlock = await lockCache(o.cache, recipe, o.interrupted);
  try {
    // Someone else may have built it while this one waited.
    const meanwhile = reuse();
    if (meanwhile && found?.dir !== meanwhile.dir && !rootLacks(meanwhile.dir, o.release).length) return { root: meanwhile, built: false, seconds: (Date.now() - t0) / 1000 };
    removeStrays(o.cache);
    const built = Math.floor(Date.now() / 1000);
    const name = `ganeti-${o.release}-${recipe.key}-${built}`;
    const partial = path.join(o.cache, `.building-${name}-${process.pid}`);
    const final = path.join(o.cache, name);
    o.log(`building a Ganeti ${o.release} node root (Debian ${recipe.suite} from ${recipe.mirror}) in ${o.cache}; reused until ${ROOT_MAX_AGE_DAYS} days old`);
    try {
      await runBuild(buildArgv(recipe, partial), path.join(o.cache, `${name}.log`), o.interrupted);
      const missing = rootLacks(partial, o.release);
      if (missing.length) throw new UserError(`the Ganeti ${o.release} node root built by mmdebstrap lacks ${missing.join(', ')}`);
      const patches = patchRoot(partial, o.release);
      for (const p of patches) o.log(`patched the node root: ${p}`);
      fs.renameSync(partial, final);
      fs.writeFileSync(path.join(o.cache, `${name}.json`), JSON.stringify({ ...recipe, patches, built: new Date(built * 1000).toISOString(), seconds: (Date.now() - t0) / 1000 }, null, 2) + '\n');
      fs.rmSync(path.join(o.cache, `${name}.log`), { force: true });
    } catch (err) {
      fs.rmSync(partial, { recursive: true, force: true });
      fs.rmSync(path.join(o.cache, `${name}.log`), { force: true });
      throw err;
    }
    const root = { dir: final, release: o.release, key: recipe.key, built };
    pruneRoots(o.cache, root.dir, o.log);
    return { root, built: true, seconds: (Date.now() - t0) / 1000 };
  } finally {
    unlock();
  }
}

/**
 * Fixes of Ganeti bugs that would fail every definition's lifecycle in the box, applied to the
 * root's copy of Ganeti (one line each in the returned list, recorded beside the root). Ganeti
 * 3.1.0~rc2 (trixie) checks the import/export daemon's certificate against the reverse name of
 * the node's address, while gnt-backup's daemons use the node certificate, whose commonName is
 * always ganeti.example.com: every `gnt-backup export` fails ("commonName does not match
 * hostname", ganeti/ganeti#1839); upstream's fix (PR #1840) expects ganeti.example.com when the
 * node certificate is used, as done here. A release whose code already differs is left alone.
 */
export function patchRoot(dir: string, release: GanetiRelease): string[] {
  const applied: string[] = [];
  const f = path.join(dir, 'usr', 'share', 'ganeti', release, 'ganeti', 'impexpd', '__init__.py');
  let text = '';
  try {
    text = fs.readFileSync(f, 'utf8');
  } catch {
    return applied;
  }
  const check = '      if host and netutils.IPAddress.IsValid(host):\n';
  const imp = 'from ganeti import netutils\n';
  if (text.includes(check) && text.includes(imp) && text.includes('x509_cert_cn, _, _ = socket.gethostbyaddr(host)')) {
    text = text
      .replace(imp, `${imp}from ganeti import pathutils\n`)
      .replace(
        check,
        [
          '      if self._opts.key == pathutils.NODED_CERT_FILE:',
          '        # ganeti-os node root: the fix of ganeti/ganeti#1839 (PR #1840)',
          '        x509_cert_cn = constants.X509_CERT_CN',
          '      elif host and netutils.IPAddress.IsValid(host):',
          '',
        ].join('\n'),
      );
    fs.writeFileSync(f, text);
    fs.rmSync(path.join(path.dirname(f), '__pycache__'), { recursive: true, force: true });
    applied.push(`${path.relative(dir, f)}: gnt-backup's certificate check (ganeti/ganeti#1839, fixed upstream by PR #1840)`);
  }
  return applied;
}

/** Run the build; UserError with mmdebstrap's last lines when it fails, or when interrupted (the build is killed). */
function runBuild(argv: string[], logFile: string, interrupted?: () => boolean): Promise<void> {
  const fd = fs.openSync(logFile, 'w');
  const child = startProcess(argv, { group: true, stdio: ['ignore', fd, fd], env: { ...CLEAN_ENV, TMPDIR: '/tmp' } });
  fs.closeSync(fd);
  return new Promise((resolve, reject) => {
    let stopped = false;
    const poll = setInterval(() => {
      if (!stopped && interrupted?.()) {
        stopped = true;
        // unshare --kill-child: its namespace's PID 1 (and so every process of the build) dies with it.
        if (child.pid) killGroup(child.pid, 'SIGKILL');
      }
    }, 200);
    const done = (code: number | null, error?: Error) => {
      clearInterval(poll);
      if (stopped) return reject(new UserError('interrupted while building the node root (the partial root was removed)'));
      if (code === 0) return resolve();
      let tail: string[] = [];
      try {
        tail = fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-15);
      } catch {
        /* none */
      }
      reject(new UserError(`building the node root failed (${error ? error.message : `mmdebstrap exit ${code}`}); the partial root was removed`, tail));
    };
    child.on('error', (err) => done(null, err));
    child.on('close', (code) => done(code));
  });
}

/** The cache's build lock for this recipe (a file holding the builder's PID); waits while a living process holds it. */
async function lockCache(cache: string, recipe: RootRecipe, interrupted?: () => boolean): Promise<() => void> {
  const f = path.join(cache, `.lock-${recipe.release}-${recipe.key}`);
  for (;;) {
    try {
      fs.writeFileSync(f, `${process.pid}\n`, { flag: 'wx' });
      return () => fs.rmSync(f, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = 0;
    try {
      holder = Number(fs.readFileSync(f, 'utf8').trim());
    } catch {
      continue;
    }
    if (!holder || holder === process.pid || !alive(holder)) {
      fs.rmSync(f, { force: true });
      continue;
    }
    if (interrupted?.()) throw new UserError(`interrupted while waiting for process ${holder} to build the node root`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Partial builds whose builder is gone (a crash or SIGKILL). */
function removeStrays(cache: string): void {
  for (const n of fs.readdirSync(cache)) {
    const m = BUILDING_NAME.exec(n);
    if (m && !alive(Number(m[1]))) fs.rmSync(path.join(cache, n), { recursive: true, force: true });
  }
}

/** Remove the cache's other roots that no running box mounts (stale ones, older package lists). */
function pruneRoots(cache: string, keep: string, log: (line: string) => void): void {
  for (const n of fs.readdirSync(cache)) {
    if (!ROOT_NAME.test(n)) continue;
    const dir = path.join(cache, n);
    if (dir === keep || rootInUse(dir)) continue;
    fs.rmSync(path.join(cache, `${n}.json`), { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    log(`removed the old node root ${dir}`);
  }
}
