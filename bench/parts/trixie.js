'use strict';
/**
 * Part `trixie`: a cold and a warm create of Debian trixie (Debian's stable release, the debian
 * template's default variant) against ganeti-instance-debootstrap 0.17, trixie's own package,
 * driven exactly as the `create` part drives 0.16 (bench/parts/instances.js): both through
 * Ganeti 3.0's InstanceOsAdd on a 2 GiB sparse file, partition style none, the same packages,
 * the reference configured (not modified) with SUITE=trixie and this node's mirror.
 *
 * 0.17 is downloaded by apt with a private configuration (lib.debianPackage: the node's sources
 * and packages are not touched) and unpacked into the bench's work directory; it is never
 * installed. Ours is the same definition as the create part's, with its own cache directory
 * (CACHE_ROOT/ours-trixie) so the cold runs leave the bookworm cache alone.
 */
const fs = require('node:fs');
const path = require('node:path');
const lib = require('../lib');
const inst = require('./instances');

const SUITE = 'trixie';
const REF_PACKAGE = 'ganeti-instance-debootstrap';

/** The trixie peers on the shared instance state: st.ref17 and st.oursTrixie (or their errors). */
function setupTrixie(ctx) {
  const st = inst.setup(ctx);
  if (st.trixie) return st;
  st.trixie = true;
  inst.LABEL.ref17 = 'ganeti-instance-debootstrap 0.17 (trixie)';
  inst.LABEL.oursTrixie = 'debian template (trixie)';
  if (st.errors.ours) st.errors.oursTrixie = st.errors.ours;
  else {
    const dir = path.join(st.work, 'os-ours-trixie', path.basename(st.ours.dir));
    fs.cpSync(st.ours.dir, dir, { recursive: true });
    const conf = path.join(dir, 'defaults.conf');
    const cache = path.join(inst.CACHE_ROOT, 'ours-trixie');
    fs.writeFileSync(conf, fs.readFileSync(conf, 'utf8').replace(/^CACHE_DIR=.*$/m, `CACHE_DIR=${cache}`));
    st.oursTrixie = { ...st.ours, dir, osName: `${path.basename(dir)}+${SUITE}`, cache };
  }
  if (!st.work) {
    st.errors.ref17 = st.errors.ref || 'no work directory';
    return st;
  }
  try {
    ctx.log(`trixie: downloading ${REF_PACKAGE} of ${SUITE} with a private apt configuration`);
    const pkg = lib.debianPackage(REF_PACKAGE, SUITE, path.join(st.work, 'apt-trixie'));
    st.ref17Version = pkg.version;
    const r = inst.setupReference(st, path.join(pkg.root, 'usr', 'share', 'ganeti', 'os', 'debootstrap'), SUITE, 'ref17');
    if (r.error) st.errors.ref17 = r.error;
    else st.ref17 = r.def;
  } catch (err) {
    st.errors.ref17 = `could not get ${REF_PACKAGE} of ${SUITE}: ${String(err.message).split('\n')[0]}`;
  }
  return st;
}

async function runTrixie(ctx) {
  const st = setupTrixie(ctx);
  const o = ctx.opts;
  const kinds = ['ref17', 'oursTrixie'].filter((k) => !st.errors[k] && st[k]);
  const cold = { ref17: [], oursTrixie: [] };
  const warm = { ref17: [], oursTrixie: [] };
  const alloc = { ref17: [], oursTrixie: [] };
  if (o.cold) {
    const rounds = o.coldRuns || 1;
    for (let i = 0; i < rounds; i++) {
      for (const k of kinds) {
        ctx.log(`trixie: ${inst.LABEL[k]}, cold cache, run ${i + 1}/${rounds}`);
        const r = await inst.create(st, k, 2, { cold: true });
        cold[k].push(r.seconds);
        fs.rmSync(r.disk, { force: true });
      }
    }
  }
  for (const k of kinds) await inst.ensureWarm(ctx, st, k);
  for (let i = 0; i < o.warmRuns; i++) {
    for (const k of kinds) {
      ctx.log(`trixie: ${inst.LABEL[k]}, warm cache, run ${i + 1}/${o.warmRuns}`);
      const r = await inst.create(st, k, 2);
      warm[k].push(r.seconds);
      alloc[k].push(r.allocated);
      fs.rmSync(r.disk, { force: true });
    }
  }
  const rows = [];
  const med = lib.median;
  const refOk = !st.errors.ref17;
  for (const [label, data] of [
    ['cold cache', cold],
    ['warm cache', warm],
  ]) {
    if (label === 'cold cache' && !o.cold) {
      rows.push({ part: 'trixie', item: `trixie create 2 GiB, ${label}`, unavailable: 'skipped (--quick or --no-cold)' });
      continue;
    }
    if (refOk) rows.push({ part: 'trixie', item: `ref 0.17 trixie create 2 GiB, ${label}`, value: med(data.ref17), unit: 's', note: `${data.ref17.length} run(s); ${REF_PACKAGE} ${st.ref17Version}` });
    if (!st.errors.oursTrixie) {
      rows.push({
        part: 'trixie',
        item: `ours trixie create 2 GiB, ${label}`,
        value: med(data.oursTrixie),
        unit: 's',
        baseline: refOk ? 'ref 0.17' : null,
        baselineValue: refOk ? med(data.ref17) : null,
        ratio: refOk ? lib.ratio(med(data.oursTrixie), med(data.ref17)) : null,
        note: `${data.oursTrixie.length} run(s)`,
      });
    }
  }
  if (kinds.length) {
    rows.push({
      part: 'trixie',
      item: 'disk space used by a new trixie instance (2 GiB disk)',
      value: med(alloc.oursTrixie),
      unit: 'B',
      baseline: refOk ? 'ref 0.17' : null,
      baselineValue: refOk ? med(alloc.ref17) : null,
      ratio: refOk ? lib.ratio(med(alloc.oursTrixie), med(alloc.ref17)) : null,
      note: 'allocated blocks of the sparse file',
    });
  }
  for (const k of ['ref17', 'oursTrixie']) if (st.errors[k]) rows.push({ part: 'trixie', item: `trixie create: ${inst.LABEL[k]}`, unavailable: st.errors[k] });
  return { rows, details: { mirror: st.mirror, suite: SUITE, refVersion: st.ref17Version || null, cold, warm, allocatedBytes: alloc, errors: st.errors, refConfig: st.ref17 && st.ref17.config, leaks: st.leaks || [] } };
}

module.exports = { runTrixie };
