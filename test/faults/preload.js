/**
 * Fault injection for the ganeti-os CLI, loaded with `node --require` (NODE_OPTIONS works too):
 * wraps node:fs so that one chosen filesystem call of the process fails with an errno, or the
 * process is SIGKILLed just before making it.
 *
 *   GANETI_OS_FAULT=<class>:<n>:<action>
 *     class   write | rename | fsync | unlink | mkdir | read | open | any, or fsyncdir: only the
 *             fsync calls on a directory (each also counts as an fsync)
 *     n       1-based: the n-th call of that class the process makes (within the scope)
 *     action  kill (SIGKILL just before the call) or an errno code (EIO, ENOSPC, EACCES, ...)
 *   GANETI_OS_FAULT_SCOPE=<dir>   only calls on paths under <dir> (and on descriptors opened
 *                                 there) count; default: every path outside the ganeti-os
 *                                 installation and node_modules (module loading never counts)
 *   GANETI_OS_FAULT_MATCH=<text>   only a call whose path contains <text> can get the fault
 *                                 (every call in scope is still counted in the counts file)
 *   GANETI_OS_FAULT_COUNTS=<file> at exit, write the calls made per class as JSON (how far a
 *                                 sweep of n must go)
 *
 * A call that fails gets an Error shaped as Node's own (code, errno, syscall, path), so the code
 * under test sees exactly what a real EIO or ENOSPC would give it.
 */
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const spec = process.env.GANETI_OS_FAULT || '';
const scope = process.env.GANETI_OS_FAULT_SCOPE ? path.resolve(process.env.GANETI_OS_FAULT_SCOPE) : undefined;
const countsFile = process.env.GANETI_OS_FAULT_COUNTS;
const match = process.env.GANETI_OS_FAULT_MATCH;
let matched = 0;
const install = path.resolve(__dirname, '..', '..');

const [want, nText, action] = spec ? spec.split(':') : [];
const target = nText ? Number(nText) : 0;

const CLASSES = {
  write: ['writeSync', 'writeFileSync', 'appendFileSync', 'copyFileSync', 'cpSync', 'ftruncateSync', 'truncateSync', 'fchmodSync', 'chmodSync', 'symlinkSync', 'linkSync'],
  rename: ['renameSync'],
  fsync: ['fsyncSync', 'fdatasyncSync'],
  unlink: ['unlinkSync', 'rmSync', 'rmdirSync'],
  mkdir: ['mkdirSync', 'mkdtempSync'],
  read: ['readFileSync', 'readSync', 'readdirSync'],
  open: ['openSync'],
};
const writeFileSync = fs.writeFileSync;
const counts = Object.fromEntries([...Object.keys(CLASSES), 'fsyncdir'].map((c) => [c, 0]));
const fstatSync = fs.fstatSync;
/** The classes a call counts in: its own, and fsyncdir for an fsync of a directory. */
function classesOf(cls, fd) {
  if (cls !== 'fsync' || typeof fd !== 'number') return [cls];
  try {
    return fstatSync(fd).isDirectory() ? [cls, 'fsyncdir'] : [cls];
  } catch {
    return [cls];
  }
}
const fds = new Set();
const fdPaths = new Map();

function inScope(p) {
  if (typeof p === 'number') return fds.has(p);
  if (p instanceof URL) p = p.pathname;
  if (Buffer.isBuffer(p)) p = p.toString();
  if (typeof p !== 'string') return false;
  const abs = path.resolve(p);
  if (scope) return abs === scope || abs.startsWith(scope + path.sep);
  return !(abs === install || abs.startsWith(install + path.sep) || abs.includes(`${path.sep}node_modules${path.sep}`) || abs.startsWith('/proc/'));
}

const errnoOf = (code) => os.constants.errno[code] ?? 5;

for (const [cls, names] of Object.entries(CLASSES)) {
  for (const name of names) {
    const orig = fs[name];
    if (typeof orig !== 'function') continue;
    fs[name] = function (...args) {
      if (inScope(args[0])) {
        const classes = classesOf(cls, args[0]);
        for (const c of classes) counts[c]++;
        const named = typeof args[0] === 'number' ? fdPaths.get(args[0]) : String(args[0]);
        const mine = !match || (named !== undefined && named.includes(match));
        const wanted = classes.includes(want) || want === 'any';
        if (mine && wanted) matched++;
        const nth = match ? matched : want === 'any' ? Object.keys(CLASSES).reduce((a, c) => a + counts[c], 0) : counts[want];
        if (spec && mine && wanted && nth === target) {
          if (action === 'kill') process.kill(process.pid, 'SIGKILL');
          const p = typeof args[0] === 'number' ? `fd ${args[0]}` : String(args[0]);
          const err = new Error(`${action}: injected failure, ${name.replace(/Sync$/, '')} '${p}'`);
          Object.assign(err, { code: action, errno: -errnoOf(action), syscall: name.replace(/Sync$/, ''), ...(typeof args[0] === 'number' ? {} : { path: p }) });
          throw err;
        }
      }
      const r = orig.apply(this, args);
      if (name === 'openSync' && typeof r === 'number' && inScope(args[0])) {
        fds.add(r);
        fdPaths.set(r, String(args[0]));
      }
      return r;
    };
  }
}
const closeSync = fs.closeSync;
fs.closeSync = function (fd, ...rest) {
  fds.delete(fd);
  fdPaths.delete(fd);
  return closeSync.call(this, fd, ...rest);
};

if (countsFile) {
  process.on('exit', () => writeFileSync(countsFile, JSON.stringify(counts)));
}
