#!/usr/bin/env node
'use strict';
/**
 * ganeti-os benchmarks: the product against its peers, in the same run on the same machine.
 *
 *   npm run bench                       everything (about 10-15 minutes on 2 cores)
 *   npm run bench -- --quick            fewer repetitions, no cold-cache runs, no 32 GiB disk
 *   npm run bench -- --parts cli,defs   only some parts: cli, defs, create, trixie, export, scale, steps, upgrade, cluster, release, pack, image, test
 *                                       (memory is measured inside cli, defs and scale; steps
 *                                       traces where create/export/import spend their time)
 *   npm run bench -- --no-cold          skip the cold-cache creations (they download a system)
 *   npm run bench -- --markdown FILE    also write the table as Markdown (for bench/RESULTS.md)
 *
 * Prints a table of medians and ratios on stdout, writes bench/out/results.json. Timings are
 * reported, never asserted. Each part reports "not available" for what this branch lacks.
 */
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib');

const PARTS = ['cli', 'create', 'trixie', 'export', 'scale', 'defs', 'steps', 'upgrade', 'cluster', 'release', 'pack', 'image', 'test'];

function parseArgs(argv) {
  const o = { quick: false, parts: PARTS.slice(), cold: true, out: path.join(__dirname, 'out', 'results.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--no-cold') o.cold = false;
    else if (a === '--parts') o.parts = argv[++i].split(',').map((s) => s.trim());
    else if (a.startsWith('--parts=')) o.parts = a.slice(8).split(',');
    else if (a === '--out') o.out = path.resolve(argv[++i]);
    else if (a === '--markdown') o.markdown = path.resolve(argv[++i]);
    else if (a === '-h' || a === '--help') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('*/')[0].replace(/^[\s\S]*?\/\*\*\n/, '').replace(/^ \* ?/gm, ''));
      process.exit(0);
    } else {
      process.stderr.write(`bench: unknown argument '${a}' (see --help)\n`);
      process.exit(2);
    }
  }
  for (const p of o.parts) {
    if (!PARTS.includes(p)) {
      process.stderr.write(`bench: unknown part '${p}' (parts: ${PARTS.join(', ')})\n`);
      process.exit(2);
    }
  }
  Object.assign(o, {
    cliRuns: 10,
    cliWarmup: 2,
    memRuns: o.quick ? 3 : 5,
    warmRuns: o.quick ? 1 : 3,
    // Cold creates, interleaved round by round (reference, old design, ours): single cold runs
    // varied by ±30 % with the load of this shared machine.
    coldRuns: 3,
    cold: o.cold && !o.quick,
    exportRuns: o.quick ? 1 : 3,
    diskSizesGiB: o.quick ? [2, 8] : [2, 8, 32],
    defCounts: o.quick ? [1, 100] : [1, 100, 1000],
    defRuns: o.quick ? 3 : 5,
  });
  return o;
}

function fmt(v, unit) {
  if (v === null || v === undefined) return '';
  if (unit === 'B') {
    if (v >= 1024 ** 3) return `${(v / 1024 ** 3).toFixed(2)} GiB`;
    if (v >= 1024 ** 2) return `${(v / 1024 ** 2).toFixed(1)} MiB`;
    return `${(v / 1024).toFixed(0)} KiB`;
  }
  const digits = unit === 'ms' ? 1 : unit === 's' ? 2 : 1;
  return `${v.toFixed(digits)} ${unit}`;
}

function cells(r) {
  return r.unavailable
    ? [r.part, r.item, 'n/a', '', '', '', '', `not available: ${r.unavailable}`]
    : [
        r.part,
        r.item,
        fmt(r.value, r.unit),
        r.baseline ? `${r.baseline}${r.baselineValue !== undefined && r.baselineValue !== null ? ` (${fmt(r.baselineValue, r.unit)})` : ''}` : '',
        r.ratio === null || r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`,
        r.target || '',
        r.ok === null || r.ok === undefined ? '' : r.ok ? 'yes' : 'NO',
        r.note || '',
      ];
}

function markdown(rows) {
  const esc = (c) => String(c).replace(/\|/g, '\\|');
  const header = ['part', 'measure', 'median', 'against', 'ratio', 'target', 'ok', 'note'];
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${cells(r).map(esc).join(' | ')} |`)].join('\n') + '\n';
}

function table(rows) {
  const header = ['part', 'measure', 'median', 'against', 'ratio', 'target', 'ok', 'note'];
  const lines = rows.map(cells);
  const widths = header.map((h, i) => Math.min(i === 7 ? 200 : 60, Math.max(h.length, ...lines.map((l) => String(l[i]).length))));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...lines.map(line)].join('\n') + '\n';
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  lib.installCleanup();
  if (process.getuid && process.getuid() !== 0 && opts.parts.some((p) => ['create', 'export', 'scale'].includes(p))) {
    process.stderr.write('bench: the create, export and scale parts need root (loop devices, mounts); they will report not available\n');
  }
  const started = new Date();
  const results = { started: started.toISOString(), options: opts, machine: lib.machine(), rows: [], details: {} };
  const log = (m) => process.stderr.write(`bench: ${m}\n`);
  const ctx = { opts, log, state: {} };

  const order = [
    ['cli', () => require('./parts/cli').runCli(opts)],
    ['defs', () => require('./parts/defs').runDefs(ctx)],
    ['create', () => require('./parts/instances').runCreate(ctx)],
    ['trixie', () => require('./parts/trixie').runTrixie(ctx)],
    ['export', () => require('./parts/instances').runExport(ctx)],
    ['scale', () => require('./parts/instances').runScale(ctx)],
    ['steps', () => require('./parts/steps').runSteps(ctx)],
    ['upgrade', () => require('./parts/upgrade').runUpgrade(ctx)],
    ['cluster', () => require('./parts/cluster').runCluster(ctx)],
    ['release', () => require('./parts/release').runRelease(ctx)],
    ['pack', () => require('./parts/pack').runPack(ctx)],
    ['image', () => require('./parts/image').runImage(ctx)],
    ['test', () => require('./parts/test').runTestPart(ctx)],
  ];
  for (const [name, fn] of order) {
    if (!opts.parts.includes(name)) continue;
    log(`part ${name} ...`);
    const t0 = Date.now();
    try {
      const r = await fn();
      results.rows.push(...r.rows);
      results.details[name] = r.details;
    } catch (err) {
      log(`part ${name} failed: ${err.stack || err}`);
      results.rows.push({ part: name, item: '(part failed)', unavailable: String(err.message || err).split('\n')[0] });
      results.details[name] = { error: String(err.stack || err) };
    } finally {
      // Whatever a part left attached is released now; temp dirs go at the end (parts share them).
      lib.releaseAll();
    }
    log(`part ${name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    // What is measured so far survives a later failure.
    fs.mkdirSync(path.dirname(opts.out), { recursive: true });
    fs.writeFileSync(opts.out, JSON.stringify({ ...results, partial: true }, null, 2) + '\n');
  }
  lib.cleanupAll();
  results.finished = new Date().toISOString();
  results.seconds = (Date.now() - started.getTime()) / 1000;
  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  fs.writeFileSync(opts.out, JSON.stringify(results, null, 2) + '\n');
  const m = results.machine;
  process.stdout.write(`\nganeti-os benchmarks, ${results.finished} (${results.seconds.toFixed(0)} s)\n`);
  process.stdout.write(`machine: ${m.cpu}, ${m.cores} cores, ${m.memoryMiB} MiB, ${m.os}, ${m.kernel}, node ${m.node}, load ${m.loadAverage.join(' ')}\n\n`);
  process.stdout.write('ours = ganeti-os (its debian template for create/export); ref = ganeti-instance-debootstrap 0.16 (PARTITION_STYLE=none)\n\n');
  process.stdout.write(table(results.rows));
  if (opts.markdown) {
    fs.writeFileSync(opts.markdown, `Measured ${results.finished} in ${results.seconds.toFixed(0)} s on: ${m.cpu}, ${m.cores} cores, ${m.memoryMiB} MiB, ${m.os}, ${m.kernel}, node ${m.node}, Ganeti ${m.ganeti}, ganeti-instance-debootstrap ${m.ganetiInstanceDebootstrap}, load average at start ${m.loadAverage.join(' ')}.\n\n` + markdown(results.rows));
  }
  process.stdout.write(`\nJSON: ${path.relative(process.cwd(), opts.out) || opts.out}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack || err}\n`);
  lib.cleanupAll();
  process.exitCode = 1;
});
