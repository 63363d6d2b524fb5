'use strict';
/**
 * Parts 2-5 on real instances: the `debian` template against Debian's ganeti-instance-debootstrap,
 * both run through Ganeti 3.0's own code (test/ganeti/harness.py: InstanceOsAdd for create, the
 * import-export daemon's command line for export/import) on sparse file disks.
 *
 * The reference is configured, not changed: a copy of /usr/share/ganeti/os/debootstrap whose
 * common.sh reads a bench-owned config file instead of /etc/default/ganeti-instance-debootstrap
 * and keeps its tarball cache in a bench-owned directory (so the bench never touches the node's
 * own configuration or cache). The config sets SUITE=bookworm, MIRROR = the mirror of this node's
 * apt sources (read at run time), PARTITION_STYLE=none (its default, msdos, needs kpartx and
 * device-mapper, which this machine lacks), and the same extra packages our template installs.
 * Ours runs with partition-style=none too (same disk layout) and install-kernel=no.
 */
const fs = require('node:fs');
const path = require('node:path');
const lib = require('../lib');

const CACHE_ROOT = '/var/cache/ganeti-os-bench';
const SUITE = 'bookworm';
const OUR_OS = 'bench-debian';
const OUR_PARAMS = { 'install-kernel': 'no', 'partition-style': 'none' };
const DEBOOTSTRAP_CANNOT = ['systemd-resolved'];
// The old design: the debian template's scripts as they were before the block stream (issue 15),
// taken from git, so that one run compares the reference, the old design and the new one.
const OLD_COMMIT = 'eabad16';
const OLD_FILES = ['lib/steps.sh', 'lib/debian-disk.sh', 'lib/debian-system.sh'];

function prerequisites() {
  if (process.getuid && process.getuid() !== 0) return 'needs root (loop devices, mounts)';
  if (!lib.ganetiAvailable()) return 'Ganeti 3.0 (python code in /usr/share/ganeti/3.0) is not installed';
  for (const c of ['losetup', 'mke2fs', 'e2fsck']) if (!lib.have(c)) return `${c} is not installed`;
  return null;
}

/** Our definition and the configured reference copy, made once per bench run. */
function setup(ctx) {
  if (ctx.state.instances) return ctx.state.instances;
  const st = { errors: {} };
  ctx.state.instances = st;
  const why = prerequisites();
  if (why) {
    st.errors.ours = why;
    st.errors.ref = why;
    return st;
  }
  st.work = lib.tempDir('inst');
  fs.mkdirSync(CACHE_ROOT, { recursive: true });
  st.mirror = lib.nodeMirror();

  // Ours: a definition written by the product itself.
  if (!lib.templateAvailable('debian')) {
    st.errors.ours = "no 'debian' template on this branch";
  } else {
    const parent = path.join(st.work, 'os-ours');
    fs.mkdirSync(parent);
    try {
      lib.run(process.execPath, [lib.CLI, 'new', OUR_OS, '--template', 'debian', '--yes', '-C', parent], { env: { ...process.env, CI: '1' } });
      const dir = path.join(parent, OUR_OS);
      const conf = path.join(dir, 'defaults.conf');
      // The template's extra packages, less those debootstrap --include cannot configure
      // (systemd-resolved fails in debootstrap's second stage): both tools install the same set.
      const m = /^#?\s*BASE_PACKAGES="([^"]*)"/m.exec(fs.readFileSync(conf, 'utf8'));
      st.extraPackages = (m ? m[1].trim().split(/\s+/).filter(Boolean) : []).filter((p) => !DEBOOTSTRAP_CANNOT.includes(p));
      // The bench's own cache directory, so a cold run can empty it.
      fs.appendFileSync(
        conf,
        `\n# Added by the ganeti-os benchmarks.\nCACHE_DIR=${path.join(CACHE_ROOT, 'ours')}\nBASE_PACKAGES="${st.extraPackages.join(' ')}"\n`,
      );
      st.ours = { dir, osName: `${OUR_OS}+${SUITE}`, cache: path.join(CACHE_ROOT, 'ours'), osparams: OUR_PARAMS };
      // Our default layout too (an msdos partition table; the reference cannot do it here).
      st.oursMsdos = { ...st.ours, osparams: { ...OUR_PARAMS, 'partition-style': 'msdos' } };
      setupOld(st, dir);
    } catch (err) {
      st.errors.ours = `ganeti-os new --template debian failed: ${String(err.message).split('\n')[0]}`;
    }
  }

  // The reference.
  const ref = setupReference(st, lib.REFERENCE_OS, SUITE, 'ref');
  if (ref.error) st.errors.ref = ref.error;
  else st.ref = ref.def;
  st.n = 0;
  st.instances = {};
  return st;
}

/**
 * A configured copy of a ganeti-instance-debootstrap OS directory (`source`: the installed
 * 0.16, or another version unpacked by the bench) that installs `suite` from this node's mirror
 * into a bench-owned cache (`CACHE_ROOT/<tag>-<packages>`), in `st.work/os-<tag>`. Returns
 * { def } or { error } (why it cannot run here).
 */
function setupReference(st, source, suite, tag) {
  if (!fs.existsSync(path.join(source, 'create'))) return { error: `ganeti-instance-debootstrap is not there (${source})` };
  if (!st.mirror) return { error: "no Debian mirror found in this node's apt sources" };
  if (!lib.have('debootstrap') || !lib.have('dump') || !lib.have('restore')) return { error: 'debootstrap, dump or restore is not installed' };
  const dir = path.join(st.work, `os-${tag}`, 'debootstrap');
  fs.mkdirSync(path.dirname(dir));
  fs.cpSync(source, dir, { recursive: true, verbatimSymlinks: false, dereference: true });
  const confFile = path.join(st.work, `${tag}-default.conf`);
  const variants = path.join(st.work, `${tag}-variants`);
  const hooks = path.join(st.work, `${tag}-hooks`);
  fs.mkdirSync(variants);
  fs.mkdirSync(hooks);
  fs.writeFileSync(path.join(variants, 'default.conf'), '');
  const extra = (st.extraPackages || []).join(',');
  fs.writeFileSync(
    confFile,
    [
      '# ganeti-instance-debootstrap configured by the ganeti-os benchmarks',
      `MIRROR="${st.mirror}"`,
      `SUITE="${suite}"`,
      'PARTITION_STYLE="none"',
      `EXTRA_PKGS="${extra}"`,
      'GENERATE_CACHE="yes"',
      'CLEAN_CACHE="14"',
      `VARIANTS_DIR="${variants}"`,
      `CUSTOMIZE_DIR="${hooks}"`,
      '',
    ].join('\n'),
  );
  const common = path.join(dir, 'common.sh');
  let text = fs.readFileSync(common, 'utf8');
  // Its cache is keyed by release and architecture only: keep one per package set.
  const cache = path.join(CACHE_ROOT, extra ? `${tag}-${extra.replace(/[^a-z0-9.+-]+/g, '_')}` : tag);
  const before = text;
  text = text.replace(/^DEFAULT_FILE=.*$/m, `DEFAULT_FILE="${confFile}"`).replace(/^CACHE_DIR=.*$/m, `CACHE_DIR="${cache}"`);
  if (text === before || !text.includes(confFile) || !text.includes(cache)) {
    return { error: 'could not point the reference copy at the bench configuration (common.sh changed?)' };
  }
  fs.writeFileSync(common, text);
  return { def: { dir, osName: 'debootstrap+default', cache, osparams: {}, config: fs.readFileSync(confFile, 'utf8') } };
}

/** The old design: our definition with the template's scripts of OLD_COMMIT, and its own cache. */
function setupOld(st, oursDir) {
  const dir = path.join(st.work, 'os-old', OUR_OS);
  try {
    fs.cpSync(oursDir, dir, { recursive: true });
    for (const f of OLD_FILES) {
      const r = lib.run('git', ['-C', lib.ROOT, 'show', `${OLD_COMMIT}:templates/debian/${f}`]);
      fs.writeFileSync(path.join(dir, f), r.stdout);
    }
    const conf = path.join(dir, 'defaults.conf');
    fs.writeFileSync(conf, fs.readFileSync(conf, 'utf8').replace(/^CACHE_DIR=.*$/m, `CACHE_DIR=${path.join(CACHE_ROOT, 'old')}`));
    st.old = { dir, osName: `${OUR_OS}+${SUITE}`, cache: path.join(CACHE_ROOT, 'old'), osparams: OUR_PARAMS };
  } catch (err) {
    st.errors.old = `the debian template of ${OLD_COMMIT} is not in this checkout's git history: ${String(err.message).split('\n')[0]}`;
  }
}

function instanceSpec(def, disk, mib) {
  return {
    name: 'bench1.example.com',
    os: def.osName,
    os_dir: def.dir,
    disks: [{ path: disk, size: mib }],
    nics: [{ mac: 'aa:00:00:12:34:56' }],
    osparams: def.osparams,
  };
}

function logTail(logdir, lines = 25) {
  try {
    const files = fs.readdirSync(logdir).map((f) => path.join(logdir, f));
    return files.map((f) => fs.readFileSync(f, 'utf8').split('\n').slice(-lines).join('\n')).join('\n');
  } catch {
    return '';
  }
}

/** One create through InstanceOsAdd on a fresh sparse disk. */
async function create(st, kind, gib, { cold = false } = {}) {
  const def = st[kind];
  const n = ++st.n;
  if (cold) fs.rmSync(def.cache, { recursive: true, force: true });
  const disk = lib.sparseDisk(path.join(st.work, `disk-${kind}-${n}.img`), gib * 1024);
  const logdir = path.join(st.work, `log-${kind}-${n}`);
  const inst = instanceSpec(def, disk, gib * 1024);
  let r;
  try {
    r = await lib.ganeti({ action: 'add', instance: inst, logdir });
  } finally {
    const leaked = lib.releaseDisk(disk);
    if (leaked.length) (st.leaks = st.leaks || []).push({ kind, step: 'create', leaked });
  }
  if (!r.answer.ok) throw new Error(`${kind} create failed: ${r.answer.error}\n${logTail(logdir)}`);
  return { seconds: r.seconds, disk, inst, allocated: lib.allocatedBytes(disk), log: logdir };
}

/** Export disk 0 of `inst` to a stream file, as the import-export daemon runs the script. */
async function exportDisk(st, kind, inst, tag) {
  const stream = path.join(st.work, `stream-${kind}-${tag}`);
  fs.rmSync(stream, { force: true });
  let r;
  try {
    r = await lib.ganeti({ action: 'export', instance: inst, index: 0, output: stream }, { sampleMs: 50 });
  } finally {
    const leaked = lib.releaseDisk(inst.disks[0].path);
    if (leaked.length) (st.leaks = st.leaks || []).push({ kind, step: 'export', leaked });
  }
  if (!r.answer.ok) throw new Error(`${kind} export failed: ${r.answer.stderr}`);
  return { seconds: r.seconds, bytes: fs.statSync(stream).size, stream, peakTreeKiB: r.peakTreeKiB, peakProcKiB: r.peakProcKiB, announced: r.answer.announced.trim() };
}

async function importDisk(st, kind, def, stream, gib, tag) {
  const disk = lib.sparseDisk(path.join(st.work, `disk-${kind}-import-${tag}.img`), gib * 1024);
  const inst = instanceSpec(def, disk, gib * 1024);
  let r;
  try {
    r = await lib.ganeti({ action: 'import', instance: inst, index: 0, input: stream }, { sampleMs: 50 });
  } finally {
    const leaked = lib.releaseDisk(disk);
    if (leaked.length) (st.leaks = st.leaks || []).push({ kind, step: 'import', leaked });
  }
  if (!r.answer.ok) throw new Error(`${kind} import failed: ${r.answer.stderr}`);
  // The imported filesystem must be sound (outside the timing).
  const fsck = lib.run('e2fsck', ['-fn', disk], { allowFail: true });
  return { seconds: r.seconds, disk, peakTreeKiB: r.peakTreeKiB, peakProcKiB: r.peakProcKiB, fsckOk: fsck.status === 0 };
}

/** A raw copy of the whole disk: what moving it without an OS export costs. */
async function rawCopy(st, disk, tag) {
  const stream = path.join(st.work, `stream-raw-${tag}`);
  const e = await lib.runSampled('dd', [`if=${disk}`, `of=${stream}`, 'bs=4M', 'status=none'], { sampleMs: 50 });
  const bytes = fs.statSync(stream).size;
  const target = path.join(st.work, `disk-raw-${tag}.img`);
  const i = await lib.runSampled('dd', [`if=${stream}`, `of=${target}`, 'bs=4M', 'status=none'], { sampleMs: 50 });
  fs.rmSync(stream, { force: true });
  fs.rmSync(target, { force: true });
  if (e.status !== 0 || i.status !== 0) throw new Error(`raw copy failed: ${e.stderr}${i.stderr}`);
  return { exportSeconds: e.seconds, importSeconds: i.seconds, bytes };
}

/** A created instance per kind and size, kept for the export and scale parts. */
async function instanceFor(ctx, st, kind, gib) {
  const key = `${kind}-${gib}`;
  if (!st.instances[key]) {
    await ensureWarm(ctx, st, kind);
    st.instances[key] = await create(st, kind, gib);
  }
  return st.instances[key];
}

/** Make sure the tool's base-system cache exists (a cold create, not counted, when it does not). */
async function ensureWarm(ctx, st, kind) {
  const def = st[kind];
  let has = false;
  try {
    const files = fs.readdirSync(def.cache);
    // Ours also caches a filesystem image of the tarball, made by its first create (the references, ref*, do not).
    has = files.some((f) => f.endsWith('.tar')) && (kind.startsWith('ref') || files.some((f) => f.endsWith('.img')));
  } catch {
    has = false;
  }
  if (!has) {
    ctx.log(`${kind}: priming its base-system cache (one uncounted create)`);
    const r = await create(st, kind, 2);
    fs.rmSync(r.disk, { force: true });
  }
}

const LABEL = { ours: 'debian template', oursMsdos: 'debian template (msdos)', old: `debian template of ${OLD_COMMIT} (old design)`, ref: 'ganeti-instance-debootstrap' };

function unavailableRows(part, items, st) {
  const rows = [];
  for (const [item, kinds] of items) {
    const missing = kinds.filter((k) => st.errors[k]);
    if (missing.length) rows.push({ part, item, unavailable: missing.map((k) => `${LABEL[k]}: ${st.errors[k]}`).join('; ') });
  }
  return rows;
}

// --- part 2: creation -----------------------------------------------------------------------

async function runCreate(ctx) {
  const st = setup(ctx);
  const o = ctx.opts;
  const kinds = ['ref', 'ours'].filter((k) => !st.errors[k]);
  const cold = { ref: [], old: [], ours: [] };
  const warm = { ref: [], ours: [], oursMsdos: [] };
  const alloc = { ref: [], ours: [], oursMsdos: [] };
  if (o.cold) {
    // The old design's cold create too: the base-system build (mmdebstrap options) changed.
    const coldKinds = [...kinds.filter((k) => k === 'ref'), ...(st.old && !st.errors.old ? ['old'] : []), ...kinds.filter((k) => k === 'ours')];
    const rounds = o.coldRuns || 1;
    for (let i = 0; i < rounds; i++) {
      for (const k of coldKinds) {
        ctx.log(`create: ${LABEL[k]}, cold cache, run ${i + 1}/${rounds}`);
        const r = await create(st, k, 2, { cold: true });
        cold[k].push(r.seconds);
        fs.rmSync(r.disk, { force: true });
      }
    }
  }
  for (const k of kinds) await ensureWarm(ctx, st, k);
  const warmKinds = st.oursMsdos ? [...kinds, 'oursMsdos'] : kinds;
  for (let i = 0; i < o.warmRuns; i++) {
    for (const k of warmKinds) {
      ctx.log(`create: ${LABEL[k]}, warm cache, run ${i + 1}/${o.warmRuns}`);
      const r = await create(st, k, 2);
      warm[k].push(r.seconds);
      alloc[k].push(r.allocated);
      if (i === 0 && k !== 'oursMsdos') st.instances[`${k}-2`] = r;
      else fs.rmSync(r.disk, { force: true });
    }
  }
  const rows = [];
  const med = (x) => lib.median(x);
  for (const [label, data, target] of [
    ['cold cache', cold, 0.5],
    ['warm cache', warm, 0.8],
  ]) {
    if (label === 'cold cache' && !o.cold) {
      rows.push({ part: 'create', item: `create 2 GiB, ${label}`, unavailable: 'skipped (--quick or --no-cold)' });
      continue;
    }
    if (!st.errors.ref) rows.push({ part: 'create', item: `ref create 2 GiB, ${label}`, value: med(data.ref), unit: 's', note: `${data.ref.length} run(s)` });
    if (data.old && data.old.length) {
      const v = med(data.old);
      rows.push({ part: 'create', item: `old create 2 GiB, ${label}`, value: v, unit: 's', baseline: st.errors.ref ? null : 'ref', baselineValue: st.errors.ref ? null : med(data.ref), ratio: st.errors.ref ? null : lib.ratio(v, med(data.ref)), note: `${data.old.length} run(s); the template of ${OLD_COMMIT}` });
    }
    if (!st.errors.ours)
      rows.push({
        part: 'create',
        item: `ours create 2 GiB, ${label}`,
        value: med(data.ours),
        unit: 's',
        baseline: st.errors.ref ? null : 'ref',
        baselineValue: st.errors.ref ? null : med(data.ref),
        ratio: st.errors.ref ? null : lib.ratio(med(data.ours), med(data.ref)),
        target: `≤ ${target}×`,
        ok: st.errors.ref ? null : lib.ratio(med(data.ours), med(data.ref)) <= target,
        note: `${data.ours.length} run(s)`,
      });
  }
  if (st.oursMsdos && warm.oursMsdos.length) {
    const v = med(warm.oursMsdos);
    rows.push({
      part: 'create',
      item: 'ours create 2 GiB, warm cache, partition-style=msdos (its default)',
      value: v,
      unit: 's',
      baseline: st.errors.ref ? null : 'ref (none)',
      baselineValue: st.errors.ref ? null : med(warm.ref),
      ratio: st.errors.ref ? null : lib.ratio(v, med(warm.ref)),
      note: `${warm.oursMsdos.length} run(s); the reference's msdos layout needs kpartx, absent here`,
    });
  }
  rows.push(...unavailableRows('create', [['create: debian template vs ganeti-instance-debootstrap', ['ours', 'ref']]], st));
  if (!st.errors.ours || !st.errors.ref) {
    rows.push({
      part: 'create',
      item: 'disk space used by a new instance (2 GiB disk)',
      value: med(alloc.ours),
      unit: 'B',
      baseline: 'ref',
      baselineValue: med(alloc.ref),
      ratio: lib.ratio(med(alloc.ours), med(alloc.ref)),
      note: 'allocated blocks of the sparse file',
    });
  }
  return { rows, details: { mirror: st.mirror, cold, warm, allocatedBytes: alloc, errors: st.errors, refConfig: st.ref && st.ref.config, leaks: st.leaks || [] } };
}

// --- part 3: export and import --------------------------------------------------------------

/**
 * The files added to a "filled" instance, per disk size: many small files in nested
 * directories, some medium and some large ones (random bytes), and sparse files (a few MiB of
 * data spread over GiBs). Made once per size in a host directory, then copied (cp -a) onto each
 * instance's root filesystem, so every tool moves the same files.
 */
const FILL = {
  2: { small: 15000, medium: 60, largeMiB: [300, 300], sparseGiB: [1, 1, 1] },
  32: { small: 30000, medium: 200, largeMiB: [600, 600, 600, 600], sparseGiB: [4, 4, 4, 4] },
};

function fillSpec(gib) {
  return FILL[gib] || FILL[32];
}

function fillTree(st, gib) {
  const key = `fill-${gib}`;
  if (st[key]) return st[key];
  const dir = path.join(st.work, key, 'srv', 'bench-fill');
  fs.mkdirSync(dir, { recursive: true });
  const f = fillSpec(gib);
  const script = `set -e
cd "$1"
text=$(cat /usr/share/common-licenses/GPL-3)
i=0
while [ "$i" -lt ${f.small} ]; do
  d=small/$((i / 200))
  [ -d "$d" ] || mkdir -p "$d"
  printf '%s' "\${text:0:$(( (i * 7919) % 8000 + 100 ))}" > "$d/f$i"
  i=$((i + 1))
done
mkdir -p medium large sparse
i=0
while [ "$i" -lt ${f.medium} ]; do head -c 2097152 /dev/urandom > "medium/m$i"; i=$((i + 1)); done
n=0
for m in ${f.largeMiB.join(' ')}; do head -c "$((m * 1048576))" /dev/urandom > "large/l$n"; n=$((n + 1)); done
n=0
for g in ${f.sparseGiB.join(' ')}; do
  truncate -s "$((g * 1024))M" "sparse/s$n"
  for k in 0 1 2 3 4 5 6 7; do dd if=/dev/urandom of="sparse/s$n" bs=1M count=2 seek="$((k * g * 128))" conv=notrunc status=none; done
  n=$((n + 1))
done
`;
  lib.run('bash', ['-c', script, 'fill', dir]);
  const bytes = Number(lib.run('du', ['-sb', '--apparent-size', dir]).stdout.split('\t')[0]);
  const used = Number(lib.run('du', ['-s', '--block-size=1', dir]).stdout.split('\t')[0]);
  st[key] = { dir, bytes, used, files: f.small + f.medium + f.largeMiB.length + f.sparseGiB.length };
  return st[key];
}

/** Copy the fill tree onto the root filesystem of an instance disk (partition-style none). */
function fillDisk(st, disk, gib) {
  const tree = fillTree(st, gib);
  const mnt = path.join(st.work, `mnt-fill-${++st.n}`);
  fs.mkdirSync(mnt);
  const loop = lib.attachLoop(disk);
  try {
    lib.mount(loop, mnt);
    try {
      lib.run('cp', ['-a', '--sparse=always', tree.dir, path.join(mnt, 'srv')]);
    } finally {
      if (!lib.unmount(mnt)) throw new Error(`umount ${mnt} failed`);
    }
  } finally {
    lib.detachLoop(loop, { partitions: false });
    fs.rmSync(mnt, { recursive: true, force: true });
  }
  return tree;
}

/** Export then import disk 0 of `inst` with definition `def`, `runs` times. */
async function roundTrips(ctx, st, kind, def, inst, gib, runs, tag) {
  const r = { exp: [], imp: [], bytes: [], announced: [], rss: [], fsck: [] };
  for (let i = 0; i < runs; i++) {
    ctx.log(`export: ${LABEL[kind]}, ${tag}, run ${i + 1}/${runs}`);
    const e = await exportDisk(st, kind, { ...inst, os_dir: def.dir, osparams: def.osparams }, `${tag}-${i}`);
    const im = await importDisk(st, kind, def, e.stream, gib, `${tag}-${i}`);
    r.exp.push(e.seconds);
    r.imp.push(im.seconds);
    r.bytes.push(e.bytes);
    r.announced.push(Number(e.announced) || null);
    r.rss.push({ export: e.peakTreeKiB, import: im.peakTreeKiB });
    r.fsck.push(im.fsckOk);
    fs.rmSync(e.stream, { force: true });
    fs.rmSync(im.disk, { force: true });
  }
  return r;
}

async function runExport(ctx) {
  const st = setup(ctx);
  const o = ctx.opts;
  const kinds = ['ref', 'old', 'ours'].filter((k) => !st.errors[k] && st[k]);
  const sizes = o.quick ? [2] : [2, 32];
  const res = {};
  const fills = {};
  for (const gib of sizes) {
    // One instance per tool and size: measured fresh, then filled with the same files.
    const made = {};
    for (const k of ['ref', 'ours']) {
      if (!kinds.includes(k)) continue;
      made[k] = gib === 2 ? await instanceFor(ctx, st, k, 2) : await (async () => (await ensureWarm(ctx, st, k), create(st, k, gib)))();
    }
    for (const fill of ['fresh', 'filled']) {
      if (fill === 'filled') {
        for (const k of Object.keys(made)) {
          ctx.log(`export: filling the ${LABEL[k]} instance (${gib} GiB)`);
          fills[gib] = fillDisk(st, made[k].disk, gib);
        }
      }
      const key = `${gib}-${fill}`;
      res[key] = {};
      const runs = fill === 'fresh' ? o.exportRuns : 1;
      for (const k of kinds) {
        // The old design exports the same disk as the new one (both are this template's disks).
        const source = made[k === 'old' ? 'ours' : k];
        if (!source) continue;
        res[key][k] = await roundTrips(ctx, st, k, st[k], source.inst, gib, runs, `${gib}g-${fill}`);
      }
    }
    for (const k of Object.keys(made)) {
      if (gib !== 2) fs.rmSync(made[k].disk, { force: true });
    }
  }
  let raw = null;
  if (kinds.length) {
    ctx.log('export: raw copy of the whole 2 GiB disk');
    const src = st.instances[`${kinds.includes('ours') ? 'ours' : 'ref'}-2`];
    raw = src ? await rawCopy(st, src.disk, 'r0') : null;
    if (raw) raw.trip = raw.exportSeconds + raw.importSeconds;
  }

  const rows = [];
  const med = (xs) => lib.median(xs);
  for (const key of Object.keys(res)) {
    const [gib, fill] = key.split('-');
    const t = res[key];
    const where = `${gib} GiB, ${fill}`;
    const trip = (k) => (t[k] ? med(t[k].exp.map((x, i) => x + t[k].imp[i])) : null);
    const ref = t.ref;
    const note = (k) => {
      const parts = [`${t[k].exp.length} run(s)`, `e2fsck -fn of the imported disk: ${t[k].fsck.every(Boolean) ? 'clean' : 'ERRORS'}`];
      if (t[k].announced[0]) parts.push(`announced ${(t[k].announced[0] / 1048576).toFixed(1)} MiB`);
      if (fill === 'filled' && fills[gib]) parts.push(`fill: ${fills[gib].files} files, ${(fills[gib].used / 1024 ** 3).toFixed(2)} GiB of data (${(fills[gib].bytes / 1024 ** 3).toFixed(1)} GiB apparent)`);
      return parts.join('; ');
    };
    for (const k of ['ref', 'old', 'ours']) {
      if (!t[k]) continue;
      const vsRef = k !== 'ref' && ref;
      const cmp = (f, target) => ({
        baseline: vsRef ? 'ref' : null,
        baselineValue: vsRef ? med(ref[f]) : null,
        ratio: vsRef ? lib.ratio(med(t[k][f]), med(ref[f])) : null,
        ...(vsRef && k === 'ours' && target ? { target: `≤ ${target}×`, ok: lib.ratio(med(t[k][f]), med(ref[f])) <= target } : {}),
      });
      rows.push({ part: 'export', item: `${k} stream bytes, ${where}`, value: med(t[k].bytes), unit: 'B', ...cmp('bytes', 1.1) });
      rows.push({ part: 'export', item: `${k} export, ${where}`, value: med(t[k].exp), unit: 's', ...cmp('exp') });
      rows.push({ part: 'export', item: `${k} import, ${where}`, value: med(t[k].imp), unit: 's', ...cmp('imp') });
      const tripRow = { part: 'export', item: `${k} round trip, ${where}`, value: trip(k), unit: 's', note: note(k) };
      if (vsRef) Object.assign(tripRow, { baseline: 'ref', baselineValue: trip('ref'), ratio: lib.ratio(trip(k), trip('ref')) });
      if (vsRef && k === 'ours') Object.assign(tripRow, { target: '≤ 0.8×', ok: lib.ratio(trip(k), trip('ref')) <= 0.8 });
      rows.push(tripRow);
      for (const what of ['export', 'import']) {
        const peak = med(t[k].rss.map((x) => x[what]));
        const refPeak = ref ? med(ref.rss.map((x) => x[what])) : null;
        rows.push({ part: 'memory', item: `${k} ${what} pipeline peak RSS, ${where}`, value: peak / 1024, unit: 'MiB', ...(vsRef ? { baseline: 'ref', baselineValue: refPeak / 1024, ratio: lib.ratio(peak, refPeak) } : {}), note: 'sum over the processes the script starts, sampled every 50 ms' });
      }
    }
  }
  if (raw) {
    rows.push({ part: 'export', item: 'raw copy of the whole 2 GiB disk (dd out + dd in)', value: raw.trip, unit: 's', note: `export ${raw.exportSeconds.toFixed(2)} s + import ${raw.importSeconds.toFixed(2)} s, ${(raw.bytes / 1024 ** 3).toFixed(2)} GiB streamed` });
    const t = res['2-fresh'];
    if (t && t.ours) {
      const trip = med(t.ours.exp.map((x, i) => x + t.ours.imp[i]));
      rows.push({ part: 'export', item: 'ours round trip vs raw copy of the disk, 2 GiB, fresh', value: trip, unit: 's', baseline: 'raw copy', baselineValue: raw.trip, ratio: lib.ratio(trip, raw.trip), target: '≪ 1×', ok: lib.ratio(trip, raw.trip) < 0.5 });
    }
  }
  rows.push(...unavailableRows('export', [['export/import: debian template (old and new) vs ganeti-instance-debootstrap', ['ours', 'old', 'ref']]], st));
  return { rows, details: { results: res, fills, raw, errors: st.errors, leaks: st.leaks || [] } };
}

// --- parts 4 and 5: disk size -----------------------------------------------------------------

async function runScale(ctx) {
  const st = setup(ctx);
  const o = ctx.opts;
  const kinds = ['ref', 'ours'].filter((k) => !st.errors[k]);
  const data = {};
  for (const k of kinds) {
    data[k] = {};
    await ensureWarm(ctx, st, k);
    for (const gib of o.diskSizesGiB) {
      ctx.log(`scale: ${LABEL[k]}, ${gib} GiB disk`);
      const c = await create(st, k, gib);
      const e = await exportDisk(st, k, c.inst, `s${gib}`);
      const im = await importDisk(st, k, st[k], e.stream, gib, `s${gib}`);
      data[k][gib] = {
        create: c.seconds,
        export: e.seconds,
        import: im.seconds,
        bytes: e.bytes,
        exportRssKiB: e.peakTreeKiB,
        importRssKiB: im.peakTreeKiB,
        exportMaxProcKiB: e.peakProcKiB,
        importMaxProcKiB: im.peakProcKiB,
        fsckOk: im.fsckOk,
      };
      for (const f of [c.disk, e.stream, im.disk]) fs.rmSync(f, { force: true });
    }
  }
  const rows = [];
  const small = o.diskSizesGiB[0];
  for (const k of kinds) {
    for (const gib of o.diskSizesGiB) {
      const d = data[k][gib];
      const s = data[k][small];
      const vs = gib === small ? {} : { baseline: `${small} GiB`, ratio: null };
      rows.push({ part: 'scale', item: `${k} create, ${gib} GiB disk`, value: d.create, unit: 's', ...vs, ...(gib === small ? {} : { baselineValue: s.create, ratio: lib.ratio(d.create, s.create) }) });
      rows.push({
        part: 'scale',
        item: `${k} export, ${gib} GiB disk`,
        value: d.export,
        unit: 's',
        ...(gib === small ? {} : { baseline: `${small} GiB`, baselineValue: s.export, ratio: lib.ratio(d.export, s.export) }),
        note: `stream ${(d.bytes / 1048576).toFixed(0)} MiB; import ${d.import.toFixed(2)} s`,
      });
      for (const [what, key] of [
        ['export', 'exportRssKiB'],
        ['import', 'importRssKiB'],
      ]) {
        rows.push({
          part: 'memory',
          item: `${k} ${what} pipeline peak RSS, ${gib} GiB disk`,
          value: d[key] / 1024,
          unit: 'MiB',
          ...(gib === small
            ? {}
            : { baseline: `${small} GiB`, baselineValue: s[key] / 1024, ratio: lib.ratio(d[key], s[key]), ...(k === 'ours' ? { target: 'flat', ok: lib.ratio(d[key], s[key]) <= 1.25 } : {}) }),
          note: 'sum over the processes the script starts, sampled every 50 ms',
        });
      }
    }
  }
  rows.push(...unavailableRows('scale', [['creation/export vs disk size', ['ours', 'ref']]], st));
  return { rows, details: { data, errors: st.errors, leaks: st.leaks || [] } };
}

module.exports = { runCreate, runExport, runScale, setup, setupReference, ensureWarm, create, instanceSpec, fillTree, FILL, LABEL, CACHE_ROOT };
