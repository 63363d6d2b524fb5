'use strict';
// Preloaded with `node --require` by the CLI benchmark: on exit, writes to $BENCH_TIMELOG one
// JSON line saying where the process spent its time, in ms since the process started:
//   start     Node's own start-up, until this hook runs (what `node -e 0` also pays);
//   modules   loading modules (require, top level only: nested loads are inside; the program's
//             own file excluded), and how many;
//   children  waiting for child processes (spawnSync/execFileSync/execSync), and how many;
//   work      the rest: parsing options, reading files, rendering, writing;
//   total     until exit.
const fs = require('node:fs');
const Module = require('node:module');
const { performance } = require('node:perf_hooks');
const out = process.env.BENCH_TIMELOG;
if (out) {
  const start = performance.now();
  let modules = 0;
  let moduleCount = 0;
  let depth = 0;
  const load = Module._load;
  Module._load = function (...args) {
    // The program itself (bin/ganeti-os.js, isMain) runs everything: not counted as loading.
    if (args[2]) return load.apply(this, args);
    const t0 = depth === 0 ? performance.now() : 0;
    depth++;
    try {
      return load.apply(this, args);
    } finally {
      depth--;
      moduleCount++;
      if (depth === 0) modules += performance.now() - t0;
    }
  };
  let children = 0;
  let childCount = 0;
  const cp = require('node:child_process');
  for (const k of ['spawnSync', 'execFileSync', 'execSync']) {
    const orig = cp[k];
    cp[k] = function (...args) {
      const t0 = performance.now();
      try {
        return orig.apply(this, args);
      } finally {
        children += performance.now() - t0;
        childCount++;
      }
    };
  }
  process.on('exit', () => {
    const total = performance.now();
    const r = (x) => Math.round(x * 10) / 10;
    fs.appendFileSync(out, JSON.stringify({ start: r(start), modules: r(modules), moduleCount, children: r(children), childCount, work: r(total - start - modules - children), total: r(total) }) + '\n');
  });
}
