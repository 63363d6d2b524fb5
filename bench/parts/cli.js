'use strict';
/**
 * Part 1 (CLI responsiveness) and the CLI half of part 5 (memory): each command's median wall
 * time and peak RSS against `node -e 0`, runs interleaved round-robin so that load from other
 * work on the machine hits every command alike; and which heavy modules each command loads.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const lib = require('../lib');

const HEAVY = {
  inquirer: /\/node_modules\/(@inquirer|inquirer)\//,
  // Rendering needs only the runtime (templates are precompiled at build time); the parser and
  // compiler load only for a template changed since the build.
  'handlebars-runtime': /\/node_modules\/handlebars\/dist\/cjs\/handlebars\.runtime\.js$/,
  'handlebars-compiler': /\/node_modules\/handlebars\/dist\/cjs\/handlebars\/compiler\//,
  'fs-extra': /\/node_modules\/fs-extra\//,
};

function commands(work, available) {
  const node = process.execPath;
  const list = [
    { id: 'floor', label: 'node -e 0', argv: [node, '-e', '0'], target: null },
    { id: 'version', label: 'ganeti-os --version', argv: [node, lib.CLI, '--version'], target: 1.5 },
    { id: 'new-dry', label: 'ganeti-os new x --yes --template blank --dry-run', argv: [node, lib.CLI, 'new', 'x', '--yes', '--template', 'blank', '--dry-run'], target: 2, renders: true },
    {
      id: 'new',
      label: 'ganeti-os new x --yes --template blank',
      // A fresh parent each run (made outside the timing).
      prepare: (i) => {
        const parent = path.join(work, `new-${i}`);
        fs.mkdirSync(parent, { recursive: true });
        return parent;
      },
      argv: [node, lib.CLI, 'new', 'x', '--yes', '--template', 'blank', '-C', '{prepared}'],
      target: 2,
      renders: true,
    },
  ];
  if (available.has('validate')) {
    list.push({ id: 'validate', label: 'ganeti-os validate <dir>', argv: [node, lib.CLI, 'validate', path.join(work, 'fixture', 'x')], target: 2 });
  } else {
    list.push({ id: 'validate', label: 'ganeti-os validate <dir>', unavailable: 'no validate command on this branch', target: 2 });
  }
  if (available.has('diagnose')) {
    list.push({ id: 'diagnose', label: 'ganeti-os diagnose <dir> (1 definition)', argv: [node, lib.CLI, 'diagnose', path.join(work, 'fixture')], target: 2 });
  }
  return list;
}

function argvFor(c, i) {
  if (!c.prepare) return c.argv;
  const p = c.prepare(i);
  return c.argv.map((a) => (a === '{prepared}' ? p : a));
}

async function runCli(opts) {
  const work = lib.tempDir('cli');
  const available = lib.cliCommands();
  // The definition validate reads: made once by the CLI itself.
  fs.mkdirSync(path.join(work, 'fixture'));
  lib.run(process.execPath, [lib.CLI, 'new', 'x', '--yes', '--template', 'blank', '-C', path.join(work, 'fixture')], { cwd: work, allowFail: false, env: { ...process.env }, input: '' });
  const list = commands(work, available);
  const live = list.filter((c) => !c.unavailable);
  const env = { ...process.env, CI: '1' };
  delete env.NODE_OPTIONS;

  // Wall time: warm-up, then interleaved runs.
  const times = Object.fromEntries(live.map((c) => [c.id, []]));
  let n = 0;
  for (let i = 0; i < opts.cliWarmup + opts.cliRuns; i++) {
    for (const c of live) {
      const argv = argvFor(c, n++);
      const r = lib.run(argv[0], argv.slice(1), { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
      if (i >= opts.cliWarmup) times[c.id].push(r.seconds * 1000);
    }
  }

  // Peak RSS (GNU time's %M, KiB), interleaved too.
  const rss = Object.fromEntries(live.map((c) => [c.id, []]));
  const cpu = Object.fromEntries(live.map((c) => [c.id, []]));
  const haveTime = fs.existsSync('/usr/bin/time');
  if (haveTime) {
    for (let i = 0; i < opts.memRuns; i++) {
      for (const c of live) {
        const argv = argvFor(c, n++);
        const r = spawnSync('/usr/bin/time', ['-f', 'BENCHRSS %M %U %S', ...argv], { cwd: work, env, encoding: 'utf8' });
        const m = /BENCHRSS (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr || '');
        if (m) {
          rss[c.id].push(Number(m[1]));
          cpu[c.id].push((Number(m[2]) + Number(m[3])) * 1000);
        }
      }
    }
  }

  // Modules each command loads.
  const modules = {};
  for (const c of live) {
    const log = path.join(work, `modules-${c.id}.txt`);
    const argv = argvFor(c, n++);
    spawnSync(argv[0], ['--require', path.join(__dirname, '..', 'modhook.js'), ...argv.slice(1)], {
      cwd: work,
      env: { ...env, BENCH_MODLOG: log },
      encoding: 'utf8',
    });
    let files = [];
    try {
      files = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).filter((f) => !f.endsWith('modhook.js'));
    } catch {
      /* the floor loads nothing */
    }
    const heavy = Object.entries(HEAVY)
      .filter(([, re]) => files.some((f) => re.test(f)))
      .map(([k]) => k);
    const packages = [...new Set(files.map((f) => (/\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f) || [])[1]).filter(Boolean))].sort();
    modules[c.id] = { count: files.length, heavy, packages };
  }

  const floorMs = lib.median(times.floor);
  const floorRss = lib.median(rss.floor);
  const floorCpu = lib.median(cpu.floor);
  const rows = [];
  for (const c of list) {
    if (c.unavailable) {
      rows.push({ part: 'cli', item: c.label, unavailable: c.unavailable });
      rows.push({ part: 'memory', item: `peak RSS: ${c.label}`, unavailable: c.unavailable });
      continue;
    }
    const ms = lib.median(times[c.id]);
    const r = c.id === 'floor' ? null : lib.ratio(ms, floorMs);
    const mod = modules[c.id];
    const badHeavy = mod.heavy.filter((h) => h === 'inquirer' || h === 'handlebars-compiler' || (h === 'handlebars-runtime' && !c.renders));
    rows.push({
      part: 'cli',
      item: c.label,
      value: ms,
      unit: 'ms',
      baseline: c.id === 'floor' ? null : 'node -e 0',
      ratio: r,
      target: c.target ? `≤ ${c.target}×` : null,
      ok: c.target ? r <= c.target && badHeavy.length === 0 : null,
      note:
        (c.id === 'floor' ? `${times[c.id].length} runs` : `modules ${mod.count}; heavy: ${mod.heavy.join(', ') || 'none'}${badHeavy.length ? ' (SHOULD NOT LOAD)' : ''}`) +
        (haveTime && cpu[c.id].length ? `; CPU ${lib.median(cpu[c.id]).toFixed(0)} ms${c.id === 'floor' ? '' : ` (${lib.ratio(lib.median(cpu[c.id]), floorCpu).toFixed(2)}×)`}` : ''),
    });
    if (haveTime) {
      const kib = lib.median(rss[c.id]);
      const rr = c.id === 'floor' ? null : lib.ratio(kib, floorRss);
      rows.push({
        part: 'memory',
        item: `peak RSS: ${c.label}`,
        value: kib / 1024,
        unit: 'MiB',
        baseline: c.id === 'floor' ? null : 'node -e 0',
        ratio: rr,
        target: c.id === 'floor' ? null : '≤ 1.5×',
        ok: c.id === 'floor' ? null : rr <= 1.5,
      });
    }
  }
  return { rows, details: { runs: opts.cliRuns, warmup: opts.cliWarmup, memRuns: opts.memRuns, timesMs: times, rssKiB: rss, cpuMs: cpu, modules } };
}

module.exports = { runCli };
