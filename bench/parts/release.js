'use strict';
/**
 * Part `release` (issue 20): `ganeti-os cluster up --ganeti R` for the release this node does not
 * run (R's nodes run from a node root, src/cluster/node-root.ts) against `cluster up` of the
 * host's own release, 1 node each, interleaved round by round in the same run (target: within
 * 1.2×), each followed by `down`; and, unless --quick or --no-cold, the root's first build (a
 * `cluster up --ganeti R` with an empty cache of the bench's own: mmdebstrap from this node's
 * mirror). The rounds then reuse that root; with --quick/--no-cold they use the default cache
 * ($GANETI_OS_CLUSTER_CACHE, else root's), building it there when it is absent or stale. The load
 * average is recorded per round: the machine is shared. Needs root, Debian's `ganeti` and
 * mmdebstrap.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const lib = require('../lib');
const { cli } = require('./cluster');

/** The installed release (from /usr/share/ganeti) and the other supported one, or null. */
function releases() {
  const supported = ['3.0', '3.1'];
  const host = supported.find((r) => fs.existsSync(`/usr/share/ganeti/${r}`)) || null;
  return { host, other: host ? supported.find((r) => r !== host) : null };
}

async function runRelease(ctx) {
  const o = ctx.opts;
  const na = (why) => ({ rows: [{ part: 'release', item: 'cluster up on the other Ganeti release', unavailable: why }], details: {} });
  if (!process.getuid || process.getuid() !== 0) return na('needs root');
  const { host, other } = releases();
  if (!host || !fs.existsSync('/usr/sbin/gnt-cluster')) return na("Debian's ganeti package is not installed");
  if (!lib.have('mmdebstrap')) return na('mmdebstrap is not installed (it builds the node root)');
  const work = lib.tempDir('release');
  const state = path.join(work, 'box');
  const fresh = o.cold && !o.quick;
  const cache = fresh ? path.join(work, 'roots') : null;
  const cacheArgs = cache ? ['--cache', cache] : [];
  const rows = [];
  const details = { host, other, cache: cache || 'default', rounds: [] };
  const up = (release, extra = []) => {
    const r = cli(['cluster', 'up', '--state', state, '--json', ...(release === host ? [] : ['--ganeti', release, ...cacheArgs]), ...extra]);
    const desc = JSON.parse(r.stdout);
    const down = cli(['cluster', 'down', '--state', state, '--json']);
    return { seconds: r.seconds, times: desc.times, built: /built the node root/.test(r.stderr), down: down.seconds, load: os.loadavg()[0] };
  };
  try {
    if (fresh) {
      ctx.log(`release: first build of the Ganeti ${other} node root (empty cache ${cache})`);
      const first = up(other);
      details.firstBuild = first;
      const rec = fs.readdirSync(cache).find((f) => f.endsWith('.json'));
      const size = lib.run('du', ['-sb', path.join(cache, rec.replace(/\.json$/, ''))]).stdout.split('\t')[0];
      rows.push({ part: 'release', item: `node root for Ganeti ${other}: first build (mmdebstrap)`, value: first.times.root, unit: 's', note: `cluster up in all ${first.seconds.toFixed(1)} s; root ${(Number(size) / 1024 ** 2).toFixed(0)} MiB; load ${first.load.toFixed(1)}` });
    }
    const rounds = o.quick ? 2 : 5;
    const t = { [host]: [], [other]: [] };
    for (let i = 0; i < rounds; i++) {
      for (const release of [host, other]) {
        ctx.log(`release: cluster up, Ganeti ${release}, round ${i + 1}/${rounds}`);
        const r = up(release);
        if (release === other && r.built) details.builtInRounds = true;
        t[release].push(r.seconds);
        details.rounds.push({ release, ...r });
      }
    }
    const loads = details.rounds.map((r) => r.load);
    const note = (release) => {
      const rs = details.rounds.filter((r) => r.release === release);
      const init = lib.median(rs.map((r) => r.times.init));
      const root = release === other ? `, root found in ${lib.median(rs.map((r) => r.times.root)).toFixed(2)} s` : '';
      return `${rounds} runs; init ${init.toFixed(1)} s${root}; load ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`;
    };
    rows.push({ part: 'release', item: `cluster up, 1 node, Ganeti ${host} (the host's)`, value: lib.median(t[host]), unit: 's', note: note(host) });
    const ratio = lib.ratio(lib.median(t[other]), lib.median(t[host]));
    rows.push({
      part: 'release',
      item: `cluster up, 1 node, Ganeti ${other} (node root cached)`,
      value: lib.median(t[other]),
      unit: 's',
      baseline: `Ganeti ${host}`,
      baselineValue: lib.median(t[host]),
      ratio,
      target: '≤ 1.2×',
      ok: ratio <= 1.2,
      note: note(other) + (details.builtInRounds ? '; the root was built in a round (not cached)' : ''),
    });
  } finally {
    cli(['cluster', 'down', '--state', state], true);
    fs.rmSync(work, { recursive: true, force: true });
  }
  return { rows, details };
}

module.exports = { runRelease };
