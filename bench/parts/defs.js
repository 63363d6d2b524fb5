'use strict';
/**
 * Part 4, definitions: `ganeti-os validate` and `ganeti-os diagnose` over a search path holding
 * 1, 100 and 1000 definitions, against Ganeti 3.0's own DiagnoseOS (what `gnt-os diagnose` runs
 * on each node) over the same directory. Peak RSS too (part 5).
 */
const fs = require('node:fs');
const path = require('node:path');
const lib = require('../lib');

function searchPath(work, template, n) {
  const dir = path.join(work, `search-${n}`);
  fs.mkdirSync(dir);
  for (let i = 0; i < n; i++) fs.cpSync(template, path.join(dir, `os-${String(i).padStart(4, '0')}`), { recursive: true });
  return dir;
}

function timed(argv, env) {
  const r = lib.run(argv[0], argv.slice(1), { env, allowFail: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0 && r.status !== 1) throw new Error(`${argv.slice(1, 4).join(' ')} ...: exit ${r.status}: ${(r.stderr || '').slice(-500)}`);
  return r.seconds;
}

function peakRss(argv, env) {
  const r = lib.run('/usr/bin/time', ['-f', 'BENCHRSS %M', ...argv], { env, allowFail: true });
  const m = /BENCHRSS (\d+)/.exec(r.stderr || '');
  return m ? Number(m[1]) : null;
}

async function runDefs(ctx) {
  const o = ctx.opts;
  const available = lib.cliCommands();
  const work = lib.tempDir('defs');
  const env = { ...process.env, CI: '1' };
  delete env.NODE_OPTIONS;
  fs.mkdirSync(path.join(work, 'one'));
  lib.run(process.execPath, [lib.CLI, 'new', 'x', '--yes', '--template', 'blank', '-C', path.join(work, 'one')], { env });
  const template = path.join(work, 'one', 'x');
  const node = process.execPath;
  const tools = [
    { id: 'validate', label: 'ganeti-os validate <each dir>', have: available.has('validate'), argv: (dir, names) => [node, lib.CLI, 'validate', ...names.map((n) => path.join(dir, n))] },
    { id: 'diagnose', label: 'ganeti-os diagnose <search dir>', have: available.has('diagnose'), argv: (dir) => [node, lib.CLI, 'diagnose', dir] },
  ];
  const haveGaneti = lib.ganetiAvailable();
  const data = {};
  for (const n of o.defCounts) {
    ctx.log(`defs: ${n} definition(s)`);
    const dir = searchPath(work, template, n);
    const names = fs.readdirSync(dir).sort();
    const d = (data[n] = {});
    for (const t of tools) if (t.have) d[t.id] = { times: [] };
    if (haveGaneti) d.ganeti = { times: [] };
    for (let i = 0; i < o.defRuns; i++) {
      for (const t of tools) if (t.have) d[t.id].times.push(timed(t.argv(dir, names), env));
      if (haveGaneti) {
        const r = await lib.ganeti({ action: 'diagnose', dirs: [dir] });
        if (!r.answer.ok) throw new Error(`Ganeti DiagnoseOS failed: ${r.answer.error}`);
        d.ganeti.times.push(r.seconds);
        d.ganeti.found = r.answer.result.length;
      }
    }
    for (const t of tools) if (t.have) d[t.id].rssKiB = peakRss(t.argv(dir, names), env);
  }
  const rows = [];
  const first = o.defCounts[0];
  for (const n of o.defCounts) {
    const d = data[n];
    const g = d.ganeti ? lib.median(d.ganeti.times) : null;
    if (d.ganeti) rows.push({ part: 'defs', item: `Ganeti 3.0 DiagnoseOS, ${n} definition(s)`, value: g, unit: 's', note: `found ${d.ganeti.found}; includes Python start-up and Ganeti import` });
    for (const t of tools) {
      if (!t.have) {
        rows.push({ part: 'defs', item: `${t.label}, ${n} definition(s)`, unavailable: `no ${t.id} command on this branch` });
        continue;
      }
      const v = lib.median(d[t.id].times);
      rows.push({
        part: 'defs',
        item: `${t.label}, ${n} definition(s)`,
        value: v,
        unit: 's',
        baseline: g !== null ? 'Ganeti DiagnoseOS' : null,
        baselineValue: g,
        ratio: lib.ratio(v, g),
        note: n === first ? '' : `${lib.ratio(v, lib.median(data[first][t.id].times)).toFixed(1)}× the time for ${first}`,
      });
      rows.push({
        part: 'memory',
        item: `peak RSS: ${t.label}, ${n} definition(s)`,
        value: d[t.id].rssKiB / 1024,
        unit: 'MiB',
        ...(n === first ? {} : { baseline: `${first} definition(s)`, baselineValue: data[first][t.id].rssKiB / 1024, ratio: lib.ratio(d[t.id].rssKiB, data[first][t.id].rssKiB) }),
      });
    }
  }
  return { rows, details: { data } };
}

module.exports = { runDefs };
