'use strict';
// Preloaded with `node --require` by the CLI benchmark: on exit, writes the files of every
// CommonJS module the process loaded to $BENCH_MODLOG (one per line).
const fs = require('node:fs');
const out = process.env.BENCH_MODLOG;
if (out) {
  process.on('exit', () => {
    fs.writeFileSync(out, Object.keys(require.cache).join('\n') + '\n');
  });
}
