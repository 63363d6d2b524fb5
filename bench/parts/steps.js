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

/** Run `script` of the definition with Ganeti's environment plus `extra`, traced. */
async function traced(st, def, script, instance, extra, io) {
  const envAnswer = await lib.ganeti({ action: 'env', instance });
  if (!envAnswer.answer.ok) throw new Error(`OSEnvironment failed: ${envAnswer.answer.error}`);
  const ps4 = path.join(st.work, 'ps4.sh');
  fs.writeFileSync(ps4, 'PS4=\'+ $EPOCHREALTIME \'\n');
  const env = { ...envAnswer.answer.env, ...extra, BASH_ENV: ps4 };
  delete env.PS4;
  const trace = path.join(st.work, `trace-${script}.txt`);
  const shell = `exec bash -x ./${script} ${io} 2>${JSON.stringify(trace)}`;
  const r = await lib.runSampled('bash', ['-c', shell], { env, cwd: def.dir });
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}): ${fs.readFileSync(trace, 'utf8').slice(-1500)}`);
  return { seconds: r.seconds, steps: summarise(fs.readFileSync(trace, 'utf8')) };
}

function summarise(text) {
  const stamped = [];
  for (const line of text.split('\n')) {
    const m = /^(\++) (\d+\.\d+) (.*)$/.exec(line);
    if (m) stamped.push({ t: Number(m[2]), cmd: m[3] });
  }
  const costs = new Map();
  for (let i = 0; i + 1 < stamped.length; i++) {
    const dt = stamped[i + 1].t - stamped[i].t;
    const key = stamped[i].cmd.replace(/\/tmp\/[^ ]*/g, '<tmp>').slice(0, 110);
    costs.set(key, (costs.get(key) || 0) + dt);
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

async function runSteps(ctx) {
  const st = inst.setup(ctx);
  const rows = [];
  const details = {};
  for (const k of ['ours', 'ref']) {
    if (st.errors[k]) {
      rows.push({ part: 'steps', item: `${k}: where create/export/import time goes`, unavailable: `${inst.LABEL[k]}: ${st.errors[k]}` });
      continue;
    }
    await inst.ensureWarm(ctx, st, k);
    const def = st[k];
    const disk = lib.sparseDisk(path.join(st.work, `disk-steps-${k}.img`), 2048);
    const target = lib.sparseDisk(path.join(st.work, `disk-steps-${k}-import.img`), 2048);
    const stream = path.join(st.work, `stream-steps-${k}`);
    const spec = inst.instanceSpec(def, disk, 2048);
    const spec2 = inst.instanceSpec(def, target, 2048);
    details[k] = {};
    try {
      ctx.log(`steps: ${inst.LABEL[k]} create, export, import (traced)`);
      details[k].create = await traced(st, def, 'create', spec, {}, '</dev/null >/dev/null');
      lib.releaseDisk(disk);
      details[k].export = await traced(st, def, 'export', spec, { EXPORT_DEVICE: disk, EXPORT_DISK_PATH: disk, EXPORT_INDEX: '0' }, `</dev/null >${JSON.stringify(stream)}`);
      lib.releaseDisk(disk);
      details[k].import = await traced(st, def, 'import', spec2, { IMPORT_DEVICE: target, IMPORT_DISK_PATH: target, IMPORT_INDEX: '0' }, `<${JSON.stringify(stream)} >/dev/null`);
    } finally {
      for (const f of [disk, target]) {
        const leaked = lib.releaseDisk(f);
        if (leaked.length) (st.leaks = st.leaks || []).push({ kind: k, step: 'steps', leaked });
        fs.rmSync(f, { force: true });
      }
      fs.rmSync(stream, { force: true });
    }
    for (const script of ['create', 'export', 'import']) {
      const d = details[k][script];
      rows.push({
        part: 'steps',
        item: `${k} ${script} (traced, by hand with Ganeti's environment)`,
        value: d.steps.total,
        unit: 's',
        note: d.steps.top
          .slice(0, 4)
          .map((s) => `${s.seconds.toFixed(2)} s ${s.cmd.replace(/ --?[a-z][a-z-]*(=\S+)?/g, '').split(' ').slice(0, 3).join(' ')}`)
          .join(' | '),
      });
    }
  }
  return { rows, details };
}

module.exports = { runSteps };
