'use strict';
/**
 * Shared machinery of the benchmarks: timing, statistics, child processes, the Ganeti harness,
 * sparse disks, and the release of every loop device and mount the benchmarks cause.
 * Plain Node.js, no dependencies; processes, loop devices and mounts through the product's own
 * layers (dist/system/process.js, dist/system/kernel.js: `npm run bench` builds first).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'ganeti-os.js');
const HARNESS = path.join(ROOT, 'test', 'ganeti', 'harness.py');
const GANETI_PYTHON = '/usr/bin/python3';
const GANETI_PYTHONPATH = '/usr/share/ganeti/3.0';
const REFERENCE_OS = '/usr/share/ganeti/os/debootstrap';

/** The process layer (src/system/process.ts) and the kernel layer (src/system/kernel.ts), compiled. */
const proc = () => require(path.join(ROOT, 'dist', 'system', 'process'));
const kernel = () => require(path.join(ROOT, 'dist', 'system', 'kernel'));

// --- statistics ---------------------------------------------------------------------------

function median(xs) {
  const a = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((p, q) => p - q);
  if (a.length === 0) return null;
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}

function ratio(a, b) {
  return typeof a === 'number' && typeof b === 'number' && b > 0 ? a / b : null;
}

// --- processes ----------------------------------------------------------------------------

/**
 * Run a command to completion (the process layer's RunResult: status, signal, stdout, stderr,
 * seconds). Throws, worded by failureMessage, when it fails unless allowFail. `stdio` as
 * child_process takes it ([stdin, stdout, stderr]); stdin is an empty pipe by default.
 */
function run(cmd, args, opts = {}) {
  const [stdin, stdout, stderr] = opts.stdio || [];
  const argv = [cmd, ...args];
  const r = proc().runSync(argv, { env: opts.env, cwd: opts.cwd, input: opts.input, stdin: stdin || 'pipe', stdout, stderr, maxBuffer: 256 * 1024 * 1024 });
  const fail = opts.allowFail ? undefined : proc().failureMessage(argv, r, { lines: 30 });
  if (fail) throw new Error(fail);
  return r;
}

function have(cmd) {
  return run('sh', ['-c', `command -v ${cmd}`], { allowFail: true }).status === 0;
}

/** Resident set sizes (KiB) of the processes below pid (pid itself excluded unless self). */
function treeRss(rootPid, includeRoot) {
  const children = new Map();
  const rss = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    const pages = Number(rest[21]);
    const pid = Number(name);
    rss.set(pid, (pages * 4096) / 1024);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(pid);
  }
  let sum = 0;
  let max = 0;
  const stack = [rootPid];
  while (stack.length) {
    const p = stack.pop();
    if (p !== rootPid || includeRoot) {
      const r = rss.get(p) || 0;
      sum += r;
      max = Math.max(max, r);
    }
    for (const c of children.get(p) || []) stack.push(c);
  }
  return { sum, max };
}

/**
 * Run a command asynchronously, sampling the summed RSS of its descendants every `sampleMs`
 * (the root process itself - e.g. the Python harness - is left out: what is measured is the
 * pipeline it starts). Resolves {status, stdout, stderr, seconds, peakTreeKiB, peakProcKiB}.
 */
function runSampled(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    // Its own process group, so that an interrupted bench can stop the whole pipeline.
    const child = proc().startProcess([cmd, ...args], { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: opts.env, cwd: opts.cwd, group: true });
    ACTIVE.add(child.pid);
    let stdout = '';
    let stderr = '';
    let peakTree = 0;
    let peakProc = 0;
    const sample = () => {
      try {
        const { sum, max } = treeRss(child.pid, false);
        peakTree = Math.max(peakTree, sum);
        peakProc = Math.max(peakProc, max);
      } catch {
        /* process gone */
      }
    };
    const timer = opts.sampleMs ? setInterval(sample, opts.sampleMs) : null;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (e) => {
      ACTIVE.delete(child.pid);
      if (timer) clearInterval(timer);
      reject(e);
    });
    child.on('close', (status) => {
      ACTIVE.delete(child.pid);
      if (timer) clearInterval(timer);
      resolve({ status, stdout, stderr, seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakTreeKiB: peakTree, peakProcKiB: peakProc });
    });
    if (child.stdin) {
      child.stdin.on('error', () => {}); // a child that exits without reading its input
      child.stdin.end(opts.input);
    }
  });
}

/** One request to real Ganeti 3.0 code (test/ganeti/harness.py). */
async function ganeti(request, { sampleMs } = {}) {
  const r = await runSampled(GANETI_PYTHON, [HARNESS], {
    input: JSON.stringify(request),
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', PYTHONPATH: GANETI_PYTHONPATH },
    sampleMs,
  });
  if (r.status !== 0) throw new Error(`harness failed (${r.status}): ${r.stderr}`);
  const answer = JSON.parse(r.stdout);
  return { answer, seconds: r.seconds, peakTreeKiB: r.peakTreeKiB, peakProcKiB: r.peakProcKiB };
}

function ganetiAvailable() {
  return fs.existsSync(GANETI_PYTHON) && fs.existsSync(`${GANETI_PYTHONPATH}/ganeti/backend.py`);
}

// --- what of the product exists on this branch ------------------------------------------

function cliCommands() {
  const r = run(process.execPath, [CLI, '--help'], { allowFail: true });
  const names = new Set();
  for (const line of (r.stdout || '').split('\n')) {
    const m = /^ {2}([a-z][a-z-]*)\b/.exec(line);
    if (m) names.add(m[1]);
  }
  return names;
}

function templateAvailable(name) {
  return fs.existsSync(path.join(ROOT, 'templates', name, 'template.json'));
}

// --- temporary directories, disks, and their release --------------------------------------

const ACTIVE = new Set();
const TMP_DIRS = [];
const DISKS = new Set();

function tempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `gos-bench-${prefix}-`));
  TMP_DIRS.push(d);
  return d;
}

/** A sparse file disk of `mib` MiB (nothing allocated). */
function sparseDisk(file, mib) {
  fs.rmSync(file, { force: true });
  const fd = fs.openSync(file, 'w');
  fs.ftruncateSync(fd, mib * 1024 * 1024);
  fs.closeSync(fd);
  DISKS.add(path.resolve(file));
  return file;
}

function allocatedBytes(file) {
  try {
    return fs.statSync(file).blocks * 512;
  } catch {
    return null;
  }
}

/** Loop devices (names) backed by `file`. */
function loopsOf(file) {
  return kernel()
    .loopsBackedBy(file)
    .map((l) => l.name);
}

/** Mount points whose source is one of `devices`, or that lie under one of `dirs` (innermost first). */
function mountsOf(devices, dirs) {
  const { atOrUnder, mountTable } = kernel();
  return mountTable()
    .filter((m) => devices.includes(m.source) || dirs.some((d) => atOrUnder(m.target, d)))
    .map((m) => m.target)
    .reverse();
}

/**
 * Release what a run left behind on `file` (and below the bench's temp dirs): unmount, then
 * detach loop devices. Returns what had to be released (a leak of the script under test).
 */
function releaseDisk(file) {
  const leaked = [];
  const loops = loopsOf(file);
  for (const m of mountsOf(loops, TMP_DIRS)) {
    kernel().unmount(m, { lazy: true });
    leaked.push(`mount ${m}`);
  }
  for (const l of loops) {
    kernel().detachLoop(l, { partitions: false });
    leaked.push(`loop ${l}`);
  }
  return leaked;
}

/** Release every loop device and mount on the bench's disks and below its temp dirs. */
function releaseAll() {
  const leaked = [];
  for (const f of DISKS) leaked.push(...releaseDisk(f));
  for (const m of mountsOf([], TMP_DIRS)) {
    kernel().unmount(m, { lazy: true });
    leaked.push(`mount ${m}`);
  }
  return leaked;
}

function cleanupAll() {
  releaseAll();
  for (const d of TMP_DIRS.splice(0)) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  DISKS.clear();
}

/** Stop the process groups still running (their scripts' own EXIT traps run), wait up to 20 s. */
function stopActive() {
  kernel().stopGroups(ACTIVE, 20_000);
}

let cleanupInstalled = false;
function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', cleanupAll);
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err.stack || err}\n`);
    stopActive();
    cleanupAll();
    process.exit(1);
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping the running step, releasing loop devices, mounts and temp dirs\n`);
      stopActive();
      cleanupAll();
      process.exit(130);
    });
  }
}

// --- the node's apt mirror ------------------------------------------------------------------

/**
 * The Debian mirror this node's apt sources use for its own release (read now, never fixed):
 * the product's own reading (dist/debian/apt-sources.js, src/debian/apt-sources.ts), null when
 * the sources name none.
 */
function nodeMirror() {
  return require(path.join(ROOT, 'dist', 'debian', 'apt-sources')).nodeMirror() || null;
}

/**
 * Download Debian package `name` of release `suite` (e.g. trixie) from this node's mirror with
 * a private apt configuration in `dir` (its own source list, lists, cache and status: the node's
 * sources and package state are not touched; its apt.conf.d, e.g. a proxy, still applies) and
 * unpack it (dpkg-deb -x) into `dir/root`, never installing it. Returns { deb, root, version }.
 * Throws when there is no mirror or apt fails.
 */
function debianPackage(name, suite, dir) {
  const mirror = nodeMirror();
  if (!mirror) throw new Error("no Debian mirror in this node's apt sources");
  const etc = path.join(dir, 'etc');
  for (const d of [etc, path.join(dir, 'lists', 'partial'), path.join(dir, 'cache', 'archives', 'partial'), path.join(dir, 'debs')]) fs.mkdirSync(d, { recursive: true });
  const list = path.join(etc, 'sources.list');
  fs.writeFileSync(list, `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror} ${suite} main\n`);
  fs.writeFileSync(path.join(dir, 'status'), '');
  const opts = [
    ['Dir::Etc::sourcelist', list],
    ['Dir::Etc::sourceparts', '-'],
    ['Dir::State::lists', path.join(dir, 'lists')],
    ['Dir::State::status', path.join(dir, 'status')],
    ['Dir::Cache', path.join(dir, 'cache')],
    ['APT::Sandbox::User', 'root'],
  ].flatMap(([k, v]) => ['-o', `${k}=${v}`]);
  run('apt-get', ['-q', ...opts, 'update']);
  run('apt-get', ['-q', ...opts, 'download', name], { cwd: path.join(dir, 'debs') });
  const deb = fs.readdirSync(path.join(dir, 'debs')).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${name} (${suite}) left no .deb`);
  const root = path.join(dir, 'root');
  run('dpkg-deb', ['-x', path.join(dir, 'debs', deb), root]);
  const version = run('dpkg-deb', ['-f', path.join(dir, 'debs', deb), 'Version']).stdout.trim();
  return { deb: path.join(dir, 'debs', deb), root, version };
}

// --- machine description --------------------------------------------------------------------

function machine() {
  const cpus = os.cpus();
  const osRelease = (() => {
    try {
      return /PRETTY_NAME="([^"]*)"/.exec(fs.readFileSync('/etc/os-release', 'utf8'))[1];
    } catch {
      return os.type();
    }
  })();
  const dpkgVersion = (pkg) => {
    const r = run('dpkg-query', ['-W', '-f', '${Version}', pkg], { allowFail: true });
    return r.status === 0 ? r.stdout.trim() : null;
  };
  return {
    cpu: cpus[0] ? cpus[0].model : 'unknown',
    cores: cpus.length,
    memoryMiB: Math.round(os.totalmem() / 1048576),
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
    kernel: `${os.type()} ${os.release()}`,
    os: osRelease,
    node: process.version,
    ganeti: dpkgVersion('ganeti-3.0'),
    ganetiInstanceDebootstrap: dpkgVersion('ganeti-instance-debootstrap'),
    debootstrap: dpkgVersion('debootstrap'),
    mmdebstrap: dpkgVersion('mmdebstrap'),
    filesystem: (() => {
      const r = run('findmnt', ['-n', '-o', 'FSTYPE', '-T', os.tmpdir()], { allowFail: true });
      return r.status === 0 ? `${r.stdout.trim()} (${os.tmpdir()})` : null;
    })(),
  };
}

module.exports = {
  ROOT,
  CLI,
  REFERENCE_OS,
  median,
  ratio,
  run,
  runSampled,
  startProcess: (argv, opts) => proc().startProcess(argv, opts),
  attachLoop: (file, opts) => kernel().attachLoop(file, opts),
  detachLoop: (dev, opts) => kernel().detachLoop(dev, opts),
  mount: (source, target, opts) => kernel().mount(source, target, opts),
  unmount: (target, opts) => kernel().unmount(target, opts),
  have,
  ganeti,
  ganetiAvailable,
  cliCommands,
  templateAvailable,
  tempDir,
  sparseDisk,
  allocatedBytes,
  loopsOf,
  releaseDisk,
  releaseAll,
  cleanupAll,
  installCleanup,
  nodeMirror,
  debianPackage,
  machine,
};
