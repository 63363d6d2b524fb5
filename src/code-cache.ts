/**
 * Loading a bundle (dist/bundles/, scripts/bundle.js) with V8's code cache, so that a command
 * run again starts without compiling its code again (Node 20 has no module.enableCompileCache).
 *
 * The first run compiles as `require` would, runs, and on exit saves what V8 compiled meanwhile
 * (the top level and every function the command ran) in the user's cache:
 * $XDG_CACHE_HOME/ganeti-os/v8/<bundle>-<key>.bin (default ~/.cache; only a cache no other user
 * can write: userCacheDir). The key is the bundle
 * file's identity (path, device, inode, size, modification and change times: a build
 * writes new files), Node's version and the architecture: a rebuilt bundle or another Node
 * never finds an old entry (and its entries for the same bundle are removed when it writes its
 * own). V8 checks what it is given as well (its version, its flags, the source's length) and
 * compiles anew when the cache does not fit (`cachedDataRejected`: that entry is then written
 * again). A cache cannot change what runs: it holds compiled code of the same source, and
 * without it the same source is compiled. GANETI_OS_NO_CACHE=1, a home that cannot be written,
 * or no home: compiled every time, as `require` does.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Require `file` (CommonJS) as `parent`'s child, with V8's code cache when there is one. */
export function requireWithCodeCache(file: string, parent: NodeModule, env: Record<string, string | undefined> = process.env): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Module = require('node:module') as typeof import('node:module') & {
    new (id: string, parent?: NodeModule): NodeModule;
    wrap(src: string): string;
    _nodeModulePaths(dir: string): string[];
  };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const vm = require('node:vm') as typeof import('node:vm');
  const src = fs.readFileSync(file, 'utf8');
  const entry = cacheEntry(file, env);
  let cachedData: Buffer | undefined;
  if (entry) {
    try {
      cachedData = fs.readFileSync(entry);
    } catch {
      // not cached yet
    }
  }
  const script = new vm.Script(Module.wrap(src), { filename: file, cachedData });
  const m = new Module(file, parent);
  m.filename = file;
  m.paths = Module._nodeModulePaths(path.dirname(file));
  require.cache[file] = m;
  try {
    const wrapper = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: NodeModule, filename: string, dirname: string) => void;
    wrapper.call(m.exports, m.exports, Module.createRequire(file), m, file, path.dirname(file));
  } catch (err) {
    delete require.cache[file];
    throw err;
  }
  m.loaded = true;
  if (entry && (!cachedData || script.cachedDataRejected)) process.once('exit', () => save(entry, () => script.createCachedData()));
  return m.exports;
}

/**
 * The directory `<cache>/ganeti-os/<sub>` of the user running this process, where <cache> is
 * $XDG_CACHE_HOME (absolute) or $HOME/.cache (HOME from the environment, else the password
 * database); made (mode 0700) when missing. Undefined — no cache, nothing made — with
 * GANETI_OS_NO_CACHE, and unless <cache> and every directory below it are directories (not
 * links) owned by this user (effective uid) that no one else may write: what is cached there
 * decides what runs (compiled code) and what validate says (a syntax verdict), so a cache
 * another user could write is not used, root's with a user's HOME (sudo -E) included. The home
 * itself (the parent of <cache>) is never made: it must be an existing directory of this user.
 */
export function userCacheDir(sub: string, env: Record<string, string | undefined> = process.env): string | undefined {
  if (env.GANETI_OS_NO_CACHE) return undefined;
  let home = env.HOME;
  if (!home) {
    try {
      home = require('node:os').homedir() as string; // eslint-disable-line @typescript-eslint/no-require-imports
    } catch {
      return undefined;
    }
  }
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : home && path.isAbsolute(home) ? path.join(home, '.cache') : undefined;
  if (!base) return undefined;
  const uid = process.geteuid ? process.geteuid() : -1;
  const ours = (st: fs.Stats | undefined) => !!st && st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0;
  const lstat = (p: string) => {
    try {
      return fs.lstatSync(p);
    } catch {
      return undefined;
    }
  };
  const chain = [base, path.join(base, 'ganeti-os'), path.join(base, 'ganeti-os', sub)];
  for (const dir of chain) {
    let st = lstat(dir);
    if (!st) {
      // Made only inside a directory of this user's (never the home, nor anything above it).
      const parent = lstat(path.dirname(dir));
      if (!parent?.isDirectory() || parent.uid !== uid || (dir === base && (parent.mode & 0o022) !== 0)) return undefined;
      try {
        fs.mkdirSync(dir, { mode: 0o700 });
      } catch {
        return undefined;
      }
      st = lstat(dir);
    }
    if (!ours(st)) return undefined;
  }
  return chain[2];
}

/** Where the code cache of `file` is kept, or undefined when it is not. */
function cacheEntry(file: string, env: Record<string, string | undefined>): string | undefined {
  const dir = userCacheDir('v8', env);
  if (!dir) return undefined;
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(file, { bigint: true });
  } catch {
    return undefined;
  }
  const key = [process.version, process.arch, st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join('-');
  return path.join(dir, `${path.basename(file, '.js')}-${key}.bin`);
}

/** The key part of an entry's name: Node's version, the architecture, the bundle file's identity. */
const KEY = /-v\d+\.\d+\.\d+-[a-z0-9]+(-\d+){5}\.bin$/;

/** Milliseconds after which a temporary cache file is a killed run's leftover. */
const TMP_STALE_MS = 60_000;

/** Write the entry whole or not at all (a temporary file renamed), and drop the bundle's older ones. */
function save(entry: string, data: () => Buffer): void {
  const dir = path.dirname(entry);
  const prefix = path.basename(entry).replace(KEY, '-');
  const tmp = `${entry}.tmp-${process.pid}`;
  try {
    for (const f of fs.readdirSync(dir)) {
      if (!f.startsWith(prefix)) continue;
      // A temporary file a killed run left (writing one takes milliseconds: any older than a
      // minute is nobody's) goes too.
      const stale = /\.bin\.tmp-\d+$/.test(f) ? Date.now() - fs.statSync(path.join(dir, f)).mtimeMs > TMP_STALE_MS : KEY.test(`-${f.slice(prefix.length)}`) && path.join(dir, f) !== entry;
      if (stale) fs.rmSync(path.join(dir, f), { force: true });
    }
    fs.writeFileSync(tmp, data(), { mode: 0o600 });
    fs.renameSync(tmp, entry);
  } catch {
    // a cache that cannot be written is no cache
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // nothing was written
    }
  }
}
