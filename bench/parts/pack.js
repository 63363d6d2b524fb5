'use strict';
/**
 * Part pack: `ganeti-os pack` of a fresh `debian` definition (a new version every run, so each
 * run really builds), the .deb's size and Installed-Size, against `dpkg-deb --build` alone on the
 * same staged tree (the floor: what pack adds is reading, validating, staging, md5sums).
 */
const fs = require('node:fs');
const path = require('node:path');
const lib = require('../lib');

/** Wall and CPU seconds (user + system, children included) of one command, with GNU time. */
function timedCpu(argv, env) {
  const r = lib.run('/usr/bin/time', ['-f', 'BENCHTIME %e %U %S', ...argv], { env, allowFail: true });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}: ${(r.stderr || '').slice(-500)}`);
  const m = /BENCHTIME ([\d.]+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return { wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), stdout: r.stdout };
}

async function runPack(ctx) {
  const o = ctx.opts;
  if (!lib.cliCommands().has('pack')) return { rows: [{ part: 'pack', item: 'ganeti-os pack', unavailable: 'no pack command on this branch' }], details: {} };
  if (!lib.have('dpkg-deb')) return { rows: [{ part: 'pack', item: 'ganeti-os pack', unavailable: 'no dpkg-deb' }], details: {} };
  const work = lib.tempDir('pack');
  const env = { ...process.env, CI: '1', DEBFULLNAME: 'Bench', DEBEMAIL: 'bench@example.org' };
  delete env.NODE_OPTIONS;
  const template = lib.templateAvailable('debian') ? 'debian' : 'blank';
  lib.run(process.execPath, [lib.CLI, 'new', 'bench-os', '--yes', '--template', template, '-C', work], { env });
  const dir = path.join(work, 'bench-os');
  const runs = o.cliRuns;
  const times = [];
  const cpu = [];
  let deb = '';
  for (let i = 0; i < runs; i++) {
    fs.appendFileSync(path.join(dir, 'defaults.conf'), `# run ${i}\n`);
    const r = timedCpu([process.execPath, lib.CLI, 'pack', '--os-dir', dir, '--output', work, '--version', String(i + 1)], env);
    times.push(r.wall);
    cpu.push(r.cpu);
    deb = r.stdout.trim();
  }
  const rebuild = [];
  for (let i = 0; i < runs; i++) rebuild.push(timedCpu([process.execPath, lib.CLI, 'pack', '--os-dir', dir, '--output', path.join(work, 'again')], env).wall);
  // The floor: dpkg-deb alone on the same tree; and node's own start-up.
  const tree = path.join(work, 'tree');
  lib.run('dpkg-deb', ['-R', deb, tree]);
  const floor = [];
  const floorCpu = [];
  for (let i = 0; i < runs; i++) {
    const r = timedCpu(['dpkg-deb', '-Zxz', '-z6', '--threads-max=1', '--root-owner-group', '--build', tree, path.join(work, 'floor.deb')], env);
    floor.push(r.wall);
    floorCpu.push(r.cpu);
  }
  const nodeCpu = [];
  for (let i = 0; i < runs; i++) nodeCpu.push(timedCpu([process.execPath, '-e', '0'], env).cpu);
  const size = fs.statSync(deb).size;
  const installed = Number(lib.run('dpkg-deb', ['-f', deb, 'Installed-Size']).stdout.trim());
  const t = lib.median(times);
  const f = lib.median(floor);
  return {
    rows: [
      { part: 'pack', item: `ganeti-os pack, ${template} definition, new version`, value: t * 1000, unit: 'ms', baseline: 'dpkg-deb --build alone', baselineValue: f * 1000, ratio: lib.ratio(t, f), target: '< 1 s', ok: t < 1 },
      { part: 'pack', item: 'ganeti-os pack, new version: CPU (user+sys, dpkg-deb included)', value: lib.median(cpu) * 1000, unit: 'ms', baseline: 'dpkg-deb alone + node -e 0', baselineValue: (lib.median(floorCpu) + lib.median(nodeCpu)) * 1000, ratio: lib.ratio(lib.median(cpu), lib.median(floorCpu) + lib.median(nodeCpu)) },
      { part: 'pack', item: 'ganeti-os pack, unchanged definition (rebuild)', value: lib.median(rebuild) * 1000, unit: 'ms' },
      { part: 'pack', item: '.deb size', value: size, unit: 'B', note: `Installed-Size ${installed} KiB` },
    ],
    details: { times, cpu, rebuild, floor, floorCpu, nodeCpu, size, installedKiB: installed },
  };
}

module.exports = { runPack };
