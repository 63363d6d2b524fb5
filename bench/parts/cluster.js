'use strict';
/**
 * The cluster box: `ganeti-os cluster up` (1 and 3 nodes; per step: Ganeti's init, each
 * `gnt-node add`, verify), `down`, and the time of every gnt-* step of `ganeti-os test --cluster`
 * for the blank template (fake) and the debian template (kvm under TCG, login prompt awaited;
 * skipped with --quick). Needs root and Debian's `ganeti` package.
 */
const fs = require('node:fs');
const path = require('node:path');
const lib = require('../lib');

const BIN = path.join(__dirname, '..', '..', 'bin', 'ganeti-os.js');

/** The built CLI with `args`; throws with the end of stderr unless it exits 0 or allowFail. */
function cli(args, allowFail = false) {
  const r = lib.run(process.execPath, [BIN, ...args], { allowFail: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0 && !allowFail) throw new Error(`ganeti-os ${args.join(' ')}: exit ${r.status}: ${(r.stderr || '').slice(-800)}`);
  return r;
}

async function runCluster(ctx) {
  const o = ctx.opts;
  if (!process.getuid || process.getuid() !== 0) return { rows: [{ part: 'cluster', item: 'cluster box', unavailable: 'needs root' }], details: {} };
  if (!fs.existsSync('/usr/sbin/gnt-cluster') || !fs.existsSync('/usr/sbin/ganeti-luxid')) {
    return { rows: [{ part: 'cluster', item: 'cluster box', unavailable: "Debian package 'ganeti' is not installed" }], details: {} };
  }
  const work = lib.tempDir('cluster');
  const rows = [];
  const details = {};
  const state = path.join(work, 'box');
  try {
    for (const nodes of o.quick ? [1] : [1, 3]) {
      const up = cli(['cluster', 'up', '--nodes', String(nodes), '--state', state, '--json']);
      const desc = JSON.parse(up.stdout);
      details[`up-${nodes}`] = desc.times;
      rows.push({ part: 'cluster', item: `up, ${nodes} node(s)`, value: up.seconds, unit: 's', note: Object.entries(desc.times).filter(([k]) => /init|add-|verify/.test(k)).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ') });
      if (nodes === 1) {
        const defs = [['blank-os', 'blank', ['--hypervisor', 'fake', '--disk-size', '64']]];
        if (!o.quick && lib.have('mmdebstrap')) defs.push(['debian-os', 'debian', []]);
        for (const [name, template, args] of defs) {
          cli(['new', name, '--template', template, '--yes', '-C', work]);
          const t = cli(['test', '--cluster', '--state', state, '--os-dir', path.join(work, name), '--json', ...args], true);
          const result = JSON.parse(t.stdout);
          details[`test-${template}`] = result;
          for (const s of result.runs[0].steps) {
            if (s.status === 'skipped') continue;
            rows.push({ part: 'cluster', item: `${template}${args.includes('fake') ? ' (fake)' : ' (kvm)'}: ${s.title}`, value: s.seconds, unit: 's', note: s.status === 'passed' ? '' : `FAILED: ${(s.detail || '').split('\n')[0]}` });
          }
        }
      }
      const down = cli(['cluster', 'down', '--state', state, '--json']);
      rows.push({ part: 'cluster', item: `down, ${nodes} node(s)`, value: down.seconds, unit: 's' });
    }
  } finally {
    cli(['cluster', 'down', '--state', state], true);
    fs.rmSync(work, { recursive: true, force: true });
  }
  return { rows, details };
}

module.exports = { runCluster, cli };
