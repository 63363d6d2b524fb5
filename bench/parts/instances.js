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
    } catch (err) {
      st.errors.ours = `ganeti-os new --template debian failed: ${String(err.message).split('\n')[0]}`;
    }
  }

  // The reference.
  if (!fs.existsSync(path.join(lib.REFERENCE_OS, 'create'))) {
    st.errors.ref = `ganeti-instance-debootstrap is not installed (${lib.REFERENCE_OS})`;
  } else if (!st.mirror) {
    st.errors.ref = 'no Debian mirror found in this node\'s apt sources';
  } else if (!lib.have('debootstrap') || !lib.have('dump') || !lib.have('restore')) {
    st.errors.ref = 'debootstrap, dump or restore is not installed';
  } else {
    const dir = path.join(st.work, 'os-ref', 'debootstrap');
    fs.mkdirSync(path.dirname(dir));
    fs.cpSync(lib.REFERENCE_OS, dir, { recursive: true, verbatimSymlinks: false, dereference: true });
    const confFile = path.join(st.work, 'ref-default.conf');
    const variants = path.join(st.work, 'ref-variants');
    const hooks = path.join(st.work, 'ref-hooks');
    fs.mkdirSync(variants);
    fs.mkdirSync(hooks);
    fs.writeFileSync(path.join(variants, 'default.conf'), '');
    const extra = (st.extraPackages || []).join(',');
    fs.writeFileSync(
      confFile,
      [
        '# ganeti-instance-debootstrap configured by the ganeti-os benchmarks',
        `MIRROR="${st.mirror}"`,
        `SUITE="${SUITE}"`,
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
    const cache = path.join(CACHE_ROOT, extra ? `ref-${extra.replace(/[^a-z0-9.+-]+/g, '_')}` : 'ref');
    const before = text;
    text = text.replace(/^DEFAULT_FILE=.*$/m, `DEFAULT_FILE="${confFile}"`).replace(/^CACHE_DIR=.*$/m, `CACHE_DIR="${cache}"`);
    if (text === before || !text.includes(confFile) || !text.includes(cache)) {
      st.errors.ref = 'could not point the reference copy at the bench configuration (common.sh changed?)';
    } else {
      fs.writeFileSync(common, text);
      st.ref = { dir, osName: 'debootstrap+default', cache, osparams: {}, config: fs.readFileSync(confFile, 'utf8') };
    }
  }
  st.n = 0;
  st.instances = {};
  return st;
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
    // Ours also caches a filesystem image of the tarball, made by its first create.
    has = files.some((f) => f.endsWith('.tar')) && (kind === 'ref' || files.some((f) => f.endsWith('.img')));
  } catch {
    has = false;
  }
  if (!has) {
    ctx.log(`${kind}: priming its base-system cache (one uncounted create)`);
    const r = await create(st, kind, 2);
    fs.rmSync(r.disk, { force: true });
  }
}

const LABEL = { ours: 'debian template', oursMsdos: 'debian template (msdos)', ref: 'ganeti-instance-debootstrap' };

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
  const cold = { ref: [], ours: [] };
  const warm = { ref: [], ours: [], oursMsdos: [] };
  const alloc = { ref: [], ours: [], oursMsdos: [] };
  if (o.cold) {
    for (const k of kinds) {
      ctx.log(`create: ${LABEL[k]}, cold cache`);
      const r = await create(st, k, 2, { cold: true });
      cold[k].push(r.seconds);
      fs.rmSync(r.disk, { force: true });
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

async function runExport(ctx) {
  const st = setup(ctx);
  const o = ctx.opts;
  const kinds = ['ref', 'ours'].filter((k) => !st.errors[k]);
  const res = {};
  for (const k of kinds) {
    const inst = await instanceFor(ctx, st, k, 2);
    res[k] = { exp: [], imp: [], bytes: [], rss: [], fsck: [] };
    for (let i = 0; i < o.exportRuns; i++) {
      ctx.log(`export: ${LABEL[k]}, run ${i + 1}/${o.exportRuns}`);
      const e = await exportDisk(st, k, inst.inst, `x${i}`);
      const im = await importDisk(st, k, st[k], e.stream, 2, `x${i}`);
      res[k].exp.push(e.seconds);
      res[k].imp.push(im.seconds);
      res[k].bytes.push(e.bytes);
      res[k].rss.push({ export: e.peakTreeKiB, import: im.peakTreeKiB });
      res[k].fsck.push(im.fsckOk);
      fs.rmSync(e.stream, { force: true });
      fs.rmSync(im.disk, { force: true });
    }
  }
  let raw = null;
  const rawSrc = kinds.length ? st.instances[`${kinds[kinds.length - 1]}-2`].disk : lib.sparseDisk(path.join(lib.tempDir('raw'), 'disk.img'), 2048);
  const rawRuns = [];
  // One raw copy: it is an order of magnitude apart and costs 2 x 2 GiB of real I/O.
  for (let i = 0; i < 1; i++) {
    ctx.log('export: raw copy of the whole 2 GiB disk');
    rawRuns.push(await rawCopy(st.work ? st : { work: path.dirname(rawSrc) }, rawSrc, `r${i}`));
  }
  raw = {
    exp: lib.median(rawRuns.map((r) => r.exportSeconds)),
    imp: lib.median(rawRuns.map((r) => r.importSeconds)),
    bytes: rawRuns[0].bytes,
  };
  raw.trip = raw.exp + raw.imp;

  const rows = [];
  const m = (k, f) => (res[k] ? lib.median(res[k][f]) : null);
  const trip = (k) => (res[k] ? lib.median(res[k].exp.map((x, i) => x + res[k].imp[i])) : null);
  const refOk = !!res.ref;
  for (const k of kinds) {
    const ours = k === 'ours';
    const base = ours && refOk;
    rows.push({
      part: 'export',
      item: `${k} export stream size`,
      value: m(k, 'bytes'),
      unit: 'B',
      baseline: base ? 'ref' : 'raw',
      baselineValue: base ? m('ref', 'bytes') : raw.bytes,
      ratio: lib.ratio(m(k, 'bytes'), base ? m('ref', 'bytes') : raw.bytes),
      target: base ? '≤ 1.1×' : null,
      ok: base ? lib.ratio(m(k, 'bytes'), m('ref', 'bytes')) <= 1.1 : null,
    });
    rows.push({ part: 'export', item: `${k} export`, value: m(k, 'exp'), unit: 's', baseline: base ? 'ref' : null, baselineValue: base ? m('ref', 'exp') : null, ratio: base ? lib.ratio(m(k, 'exp'), m('ref', 'exp')) : null });
    rows.push({ part: 'export', item: `${k} import`, value: m(k, 'imp'), unit: 's', baseline: base ? 'ref' : null, baselineValue: base ? m('ref', 'imp') : null, ratio: base ? lib.ratio(m(k, 'imp'), m('ref', 'imp')) : null, note: `e2fsck -fn of the imported disk: ${res[k].fsck.every(Boolean) ? 'clean' : 'ERRORS'}` });
    rows.push({
      part: 'export',
      item: `${k} round trip (export + import)`,
      value: trip(k),
      unit: 's',
      baseline: base ? 'ref' : 'raw copy',
      baselineValue: base ? trip('ref') : raw.trip,
      ratio: lib.ratio(trip(k), base ? trip('ref') : raw.trip),
      target: base ? '≤ 0.8×' : null,
      ok: base ? lib.ratio(trip(k), trip('ref')) <= 0.8 : null,
    });
    if (ours) rows.push({ part: 'export', item: 'ours round trip vs raw copy of the disk', value: trip(k), unit: 's', baseline: 'raw copy', baselineValue: raw.trip, ratio: lib.ratio(trip(k), raw.trip), target: '≪ 1×', ok: lib.ratio(trip(k), raw.trip) < 0.5 });
  }
  rows.push({ part: 'export', item: 'raw copy of the whole disk (dd out + dd in)', value: raw.trip, unit: 's', note: `export ${raw.exp.toFixed(2)} s + import ${raw.imp.toFixed(2)} s, ${(raw.bytes / 1024 ** 3).toFixed(2)} GiB streamed` });
  rows.push(...unavailableRows('export', [['export/import: debian template vs ganeti-instance-debootstrap', ['ours', 'ref']]], st));
  return { rows, details: { results: res, raw: { ...raw, runs: rawRuns }, errors: st.errors, leaks: st.leaks || [] } };
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

module.exports = { runCreate, runExport, runScale, setup, ensureWarm, create, instanceSpec, LABEL };
