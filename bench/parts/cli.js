'use strict';
/**
 * Part 1 (CLI responsiveness) and the CLI half of part 5 (memory): each everyday command's
 * median wall time (10 runs) and peak RSS against `node -e 0`, runs interleaved round-robin so
 * that load from other work on the machine hits every command alike; which heavy modules each
 * loads, and where its time goes (Node's start-up, loading modules, child processes, its own
 * work: bench/timehook.js).
 */
const fs = require('node:fs');
const path = require('node:path');
const lib = require('../lib');

const HEAVY = {
  inquirer: /\/node_modules\/(@inquirer|inquirer)\//,
  // Rendering needs only the runtime (templates are precompiled at build time); the parser and
  // compiler load only for a template changed since the build.
  'handlebars-runtime': /\/node_modules\/handlebars\/dist\/cjs\/handlebars\.runtime\.js$/,
  'handlebars-compiler': /\/node_modules\/handlebars\/dist\/cjs\/handlebars\/compiler\//,
  'fs-extra': /\/node_modules\/fs-extra\//,
};

/** Everyday commands must start about as quickly as Node itself (issue 25): ≤ 1.3× `node -e 0`. */
const EVERYDAY = 1.3;

function commands(work, available) {
  const node = process.execPath;
  const fixture = path.join(work, 'fixture', 'x');
  /** A fresh copy of the fixture definition per run (made outside the timing), for commands that write. */
  const copyFixture = (i, from = 'fixture') => {
    const parent = path.join(work, `copy-${i}`);
    fs.cpSync(path.join(work, from), parent, { recursive: true });
    return path.join(parent, 'x');
  };
  /** The fixture with a variant v1 and a parameter p1 more, for the commands that remove them. */
  const copyFixtureMore = (i) => copyFixture(i, 'fixture-more');
  const list = [
    { id: 'floor', label: 'node -e 0', argv: [node, '-e', '0'], target: null },
    { id: 'version', label: 'ganeti-os --version', argv: [node, lib.CLI, '--version'], target: EVERYDAY },
    { id: 'help', label: 'ganeti-os --help', argv: [node, lib.CLI, '--help'], target: EVERYDAY },
    { id: 'new-dry', label: 'ganeti-os new x --yes --template blank --dry-run', argv: [node, lib.CLI, 'new', 'x', '--yes', '--template', 'blank', '--dry-run'], target: EVERYDAY, renders: true },
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
      target: EVERYDAY,
      renders: true,
    },
    { id: 'info', label: 'ganeti-os info <dir>', argv: [node, lib.CLI, 'info', fixture], target: EVERYDAY, renders: true },
  ];
  if (available.has('validate')) {
    list.push({ id: 'validate', label: 'ganeti-os validate <dir>', argv: [node, lib.CLI, 'validate', fixture], target: EVERYDAY });
  } else {
    list.push({ id: 'validate', label: 'ganeti-os validate <dir>', unavailable: 'no validate command on this branch', target: EVERYDAY });
  }
  list.push(
    { id: 'add-variant', label: 'ganeti-os add-variant v2 (writes; a fresh copy each run)', prepare: copyFixture, argv: [node, lib.CLI, 'add-variant', 'v2', '--os-dir', '{prepared}'], target: EVERYDAY, renders: true },
    { id: 'remove-variant', label: 'ganeti-os remove-variant v1 (writes)', prepare: copyFixtureMore, argv: [node, lib.CLI, 'remove-variant', 'v1', '--os-dir', '{prepared}'], target: EVERYDAY, renders: true },
    { id: 'add-param', label: 'ganeti-os add-param size "Disk size" --default 8G (writes)', prepare: copyFixture, argv: [node, lib.CLI, 'add-param', 'size', 'Disk size', '--default', '8G', '--os-dir', '{prepared}'], target: EVERYDAY, renders: true },
    { id: 'remove-param', label: 'ganeti-os remove-param p1 (writes)', prepare: copyFixtureMore, argv: [node, lib.CLI, 'remove-param', 'p1', '--os-dir', '{prepared}'], target: EVERYDAY, renders: true },
    { id: 'bump-api', label: 'ganeti-os bump-api 15 (writes)', prepare: copyFixture, argv: [node, lib.CLI, 'bump-api', '15', '--os-dir', '{prepared}'], target: EVERYDAY, renders: true },
    { id: 'upgrade-dry', label: 'ganeti-os upgrade --dry-run <dir> (up to date)', argv: [node, lib.CLI, 'upgrade', '--dry-run', '--os-dir', fixture], target: EVERYDAY, renders: true },
  );
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
  fs.cpSync(path.join(work, 'fixture'), path.join(work, 'fixture-more'), { recursive: true });
  const more = path.join(work, 'fixture-more', 'x');
  lib.run(process.execPath, [lib.CLI, 'add-variant', 'v1', '--os-dir', more], { cwd: work, allowFail: false, env: { ...process.env }, input: '' });
  lib.run(process.execPath, [lib.CLI, 'add-param', 'p1', 'P one', '--default', '1', '--os-dir', more], { cwd: work, allowFail: false, env: { ...process.env }, input: '' });
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
        const r = lib.run('/usr/bin/time', ['-f', 'BENCHRSS %M %U %S', ...argv], { cwd: work, env, allowFail: true });
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
    lib.run(argv[0], ['--require', path.join(__dirname, '..', 'modhook.js'), ...argv.slice(1)], { cwd: work, env: { ...env, BENCH_MODLOG: log }, allowFail: true });
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

  // Where each spends its time (bench/timehook.js), median of a few runs per part.
  const parts = {};
  for (const c of live) {
    const log = path.join(work, `time-${c.id}.jsonl`);
    for (let i = 0; i < Math.min(5, opts.cliRuns); i++) {
      const argv = argvFor(c, n++);
      lib.run(argv[0], ['--require', path.join(__dirname, '..', 'timehook.js'), ...argv.slice(1)], { cwd: work, env: { ...env, BENCH_TIMELOG: log }, allowFail: true });
    }
    let runs = [];
    try {
      runs = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    } catch {
      /* the floor loads nothing through require */
    }
    if (runs.length) parts[c.id] = Object.fromEntries(Object.keys(runs[0]).map((k) => [k, lib.median(runs.map((r) => r[k]))]));
  }
  const spent = (id) => {
    const p = parts[id];
    if (!p) return '';
    return `; time: start ${p.start.toFixed(0)} ms, modules ${p.modules.toFixed(0)} ms (${p.moduleCount}), children ${p.children.toFixed(0)} ms (${p.childCount}), work ${p.work.toFixed(0)} ms`;
  };

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
        (haveTime && cpu[c.id].length ? `; CPU ${lib.median(cpu[c.id]).toFixed(0)} ms${c.id === 'floor' ? '' : ` (${lib.ratio(lib.median(cpu[c.id]), floorCpu).toFixed(2)}×)`}` : '') +
        spent(c.id),
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
  return { rows, details: { runs: opts.cliRuns, warmup: opts.cliWarmup, memRuns: opts.memRuns, timesMs: times, rssKiB: rss, cpuMs: cpu, modules, timeSpent: parts } };
}

module.exports = { runCli };
