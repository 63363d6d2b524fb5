'use strict';
/**
 * Diagnostics, not a comparison: where the time of create, export and import goes, per command,
 * for our debian template and for the reference. Each script runs once, by hand but with exactly
 * the environment Ganeti 3.0 computes for it (the harness's OSEnvironment), under `bash -x` with
 * a PS4 that stamps every command with $EPOCHREALTIME; the gap to the next stamp is charged to the
 * command. Background work (e.g. host keys made while the system unpacks) shows up interleaved.
 */
const fs = require('node:fs');
const path = require('node:path');
const lib = require('../lib');
const inst = require('./instances');

const TOP = 6;

/**
 * Run `script` of the definition with Ganeti's environment plus `extra`, traced: every line of
 * its standard error (xtrace lines and the installers' own output) stamped by perl on arrival.
 */
async function traced(st, def, script, instance, extra, io) {
  const envAnswer = await lib.ganeti({ action: 'env', instance });
  if (!envAnswer.answer.ok) throw new Error(`OSEnvironment failed: ${envAnswer.answer.error}`);
  const ps4 = path.join(st.work, 'ps4.sh');
  fs.writeFileSync(ps4, 'PS4=\'+ \'\n');
  const env = { ...envAnswer.answer.env, ...extra, BASH_ENV: ps4 };
  delete env.PS4;
  const trace = path.join(st.work, `trace-${script}.txt`);
  const stamp = `perl -MTime::HiRes=time -pe '$_ = sprintf("@%.6f ", time) . $_' >${JSON.stringify(trace)}`;
  const shell = `set -o pipefail; bash -x ./${script} <${JSON.stringify(io.stdin)} 2>&1 >${JSON.stringify(io.stdout)} | ${stamp}`;
  const r = await lib.runSampled('bash', ['-c', shell], { env, cwd: def.dir });
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}): ${fs.readFileSync(trace, 'utf8').slice(-1500)}`);
  return { seconds: r.seconds, steps: summarise(fs.readFileSync(trace, 'utf8')) };
}

/**
 * Where the time went: the gap after each line is charged to the command running then (the
 * latest xtrace line) or, while an installer runs, to its latest phase line ("I: ...").
 */
function summarise(text) {
  const stamped = [];
  for (const line of text.split('\n')) {
    const m = /^@(\d+\.\d+) (.*)$/.exec(line);
    if (m) stamped.push({ t: Number(m[1]), text: m[2] });
  }
  const costs = new Map();
  let current = '(start)';
  for (let i = 0; i + 1 < stamped.length; i++) {
    const x = /^\++ (.*)$/.exec(stamped[i].text);
    if (x) current = x[1].replace(/\/tmp\/[^ ]*/g, '<tmp>').slice(0, 110);
    else if (/^I: /.test(stamped[i].text)) current = `installer: ${phaseOf(stamped[i].text.slice(3))}`;
    const dt = stamped[i + 1].t - stamped[i].t;
    costs.set(current, (costs.get(current) || 0) + dt);
  }
  const total = stamped.length > 1 ? stamped[stamped.length - 1].t - stamped[0].t : 0;
  return {
    total,
    top: [...costs]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
      .map(([cmd, s]) => ({ cmd, seconds: s })),
  };
}

/** An installer's phase from its line: "installing essential", "Unpacking" (names and versions dropped). */
const phaseOf = (line) =>
  line
    .split(/\s+/)
    .filter((w) => w && !/[\d.:/]/.test(w))
    .slice(0, 2)
    .join(' ');

const shortCmd = (cmd) => (cmd.startsWith('installer: ') ? cmd : cmd.replace(/ --?[a-z][a-z-]*(=\S+)?/g, '').split(' ').slice(0, 3).join(' '));

async function runSteps(ctx) {
  const st = inst.setup(ctx);
  const rows = [];
  const details = {};
  for (const k of ['ours', 'ref']) {
    if (st.errors[k]) {
      rows.push({ part: 'steps', item: `${k}: where create/export/import time goes`, unavailable: `${inst.LABEL[k]}: ${st.errors[k]}` });
      continue;
    }
    const def = st[k];
    if (ctx.opts.cold) {
      // A cold create (the tool's cache emptied, as the create part does), traced: the split
      // between the installer's phases, packing the cache, and the instance itself.
      ctx.log(`steps: ${inst.LABEL[k]} create, cold cache (traced)`);
      fs.rmSync(def.cache, { recursive: true, force: true });
      const cold = lib.sparseDisk(path.join(st.work, `disk-steps-${k}-cold.img`), 2048);
      try {
        details[k] = { createCold: await traced(st, def, 'create', inst.instanceSpec(def, cold, 2048), {}, { stdin: '/dev/null', stdout: '/dev/null' }) };
      } finally {
        const leaked = lib.releaseDisk(cold);
        if (leaked.length) (st.leaks = st.leaks || []).push({ kind: k, step: 'steps', leaked });
        fs.rmSync(cold, { force: true });
      }
    }
    await inst.ensureWarm(ctx, st, k);
    const disk = lib.sparseDisk(path.join(st.work, `disk-steps-${k}.img`), 2048);
    const target = lib.sparseDisk(path.join(st.work, `disk-steps-${k}-import.img`), 2048);
    const stream = path.join(st.work, `stream-steps-${k}`);
    const spec = inst.instanceSpec(def, disk, 2048);
    const spec2 = inst.instanceSpec(def, target, 2048);
    details[k] = details[k] || {};
    try {
      ctx.log(`steps: ${inst.LABEL[k]} create, export, import (traced)`);
      details[k].create = await traced(st, def, 'create', spec, {}, { stdin: '/dev/null', stdout: '/dev/null' });
      lib.releaseDisk(disk);
      details[k].export = await traced(st, def, 'export', spec, { EXPORT_DEVICE: disk, EXPORT_DISK_PATH: disk, EXPORT_INDEX: '0' }, { stdin: '/dev/null', stdout: stream });
      lib.releaseDisk(disk);
      details[k].import = await traced(st, def, 'import', spec2, { IMPORT_DEVICE: target, IMPORT_DISK_PATH: target, IMPORT_INDEX: '0' }, { stdin: stream, stdout: '/dev/null' });
    } finally {
      for (const f of [disk, target]) {
        const leaked = lib.releaseDisk(f);
        if (leaked.length) (st.leaks = st.leaks || []).push({ kind: k, step: 'steps', leaked });
        fs.rmSync(f, { force: true });
      }
      fs.rmSync(stream, { force: true });
    }
    for (const [key, script, what] of [
      ['createCold', 'create', 'create, cold cache'],
      ['create', 'create', 'create'],
      ['export', 'export', 'export'],
      ['import', 'import', 'import'],
    ]) {
      const d = details[k][key];
      if (!d) continue;
      rows.push({
        part: 'steps',
        item: `${k} ${what} (traced, by hand with Ganeti's environment)`,
        value: d.steps.total,
        unit: 's',
        note: d.steps.top
          .slice(0, key === 'createCold' ? 6 : 4)
          .map((s) => `${s.seconds.toFixed(2)} s ${shortCmd(s.cmd)}`)
          .join(' | '),
      });
    }
  }
  return { rows, details };
}

module.exports = { runSteps };
