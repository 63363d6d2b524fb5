'use strict';
/**
 * `ganeti-os test` on the debian template with its own kernel (kernel_path=, so both boots
 * happen), warm cache, QEMU under TCG: the wall time of the command next to the sum of its own
 * steps' times (its boots overlap export and import and each other: target ≤ 0.6×) and next to
 * the plain sum of its steps done by hand one after the other, today's sequential order
 * (`ganeti-os run` for each script, the same QEMU boot for each boot, the import's disk grown
 * and booted with its writes kept and a clean shutdown, as `test` does), the machine's load
 * average beside it, and the peak RSS of the test process itself (streams pass through it: it
 * must stay flat).
 */
const fs = require('node:fs');
const path = require('node:path');
const lib = require('../lib');

const OS = 'debian-os';

function prerequisites() {
  if (process.getuid && process.getuid() !== 0) return 'needs root';
  if (!lib.templateAvailable('debian')) return "no 'debian' template on this branch";
  if (!lib.cliCommands().has('test')) return "no 'test' command on this branch";
  for (const c of ['qemu-system-x86_64', 'mmdebstrap', 'debugfs', 'sfdisk']) if (!lib.have(c)) return `${c} missing`;
  return null;
}

/**
 * Run a command, sampling its own peak RSS (VmHWM of the process itself, not of its children:
 * GNU time's %M would report QEMU's). Resolves {status, stdout, stderr, seconds, hwmKiB}.
 */
function runWatched(cmd, args, opts) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = lib.startProcess([cmd, ...args], { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hwm = 0;
    const timer = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) hwm = Math.max(hwm, Number(m[1]));
      } catch {
        /* gone */
      }
    }, 200);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (e) => {
      clearInterval(timer);
      reject(e);
    });
    child.on('close', (status) => {
      clearInterval(timer);
      resolve({ status, stdout, stderr, seconds: (Date.now() - t0) / 1000, hwmKiB: hwm });
    });
  });
}

async function runTestPart(ctx) {
  const why = prerequisites();
  if (why) return { rows: [{ part: 'test', item: 'ganeti-os test (debian template, kernel_path=)', unavailable: why }], details: {} };
  const work = lib.tempDir('test');
  const env = { ...process.env, CI: '1' };
  lib.run(process.execPath, [lib.CLI, 'new', OS, '--yes', '-C', work], { env });
  const osDir = path.join(work, OS);
  const cli = (args) => lib.run(process.execPath, [lib.CLI, ...args], { env, cwd: work });
  const inst = ['--hvparam', 'kernel_path='];
  const logs = path.join(work, 'logs');

  // Warm the base-system cache (uncounted).
  const warm = lib.sparseDisk(path.join(work, 'warm.img'), 2048);
  cli(['run', 'create', '--os-dir', osDir, '--disk', warm, ...inst, '--log-dir', logs]);
  lib.releaseDisk(warm);
  fs.rmSync(warm, { force: true });

  ctx.log('test: ganeti-os test (two TCG boots)');
  const load = () => require('node:os').loadavg().map((x) => x.toFixed(1)).join(' ');
  const loadBefore = load();
  const argv = [lib.CLI, 'test', '--os-dir', osDir, '--work-dir', path.join(work, 'tw'), '--json', ...inst];
  const r = await runWatched(process.execPath, argv, { env, cwd: work });
  const rssKiB = r.hwmKiB;
  const loadAfter = load();
  let doc;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    throw new Error(`ganeti-os test gave no JSON (exit ${r.status}): ${r.stderr.slice(-1500)}`);
  }
  const run = doc.runs[0];
  if (!doc.ok) throw new Error(`ganeti-os test failed: ${run.steps.filter((s) => s.status === 'failed').map((s) => `${s.step}: ${s.detail}`).join('; ')}`);
  const bads = (run.steps.find((s) => s.step === 'verify').checks || []).length - 1;

  ctx.log('test: the same steps by hand (ganeti-os run, QEMU)');
  const { bootUntilReady } = require(path.resolve(__dirname, '..', '..', 'dist', 'boot', 'qemu'));
  const a = lib.sparseDisk(path.join(work, 'a.img'), 2048);
  const b = lib.sparseDisk(path.join(work, 'b.img'), 2560);
  const stream = path.join(work, 'a.stream');
  const plain = {};
  const t = (k, s) => (plain[k] = (plain[k] || 0) + s);
  const boot = async (disk, persist = false) => {
    const t0 = Date.now();
    const res = await bootUntilReady({ disks: [disk], macs: ['aa:00:00:00:00:00'], plan: { mode: 'disk', reason: 'bench' }, consoleLog: path.join(work, 'console.log'), timeoutSeconds: 900, persist });
    if (!res.ready) throw new Error(`boot of ${disk}: ${res.problem}`);
    return (Date.now() - t0) / 1000;
  };
  try {
    const base = ['--os-dir', osDir, ...inst, '--log-dir', logs];
    t('verify', cli(['run', 'verify', ...base]).seconds);
    // The bad values are refused (exit 1), as in the test.
    for (let i = 0; i < bads; i++) t('verify', lib.run(process.execPath, [lib.CLI, 'run', 'verify', ...base, '--osparam', 'swap=not-a-choice'], { env, cwd: work, allowFail: true }).seconds);
    t('create', cli(['run', 'create', ...base, '--disk', a]).seconds);
    t('boot', await boot(a));
    t('export', cli(['run', 'export', ...base, '--disk', a, '--output', stream]).seconds);
    t('import', cli(['run', 'import', ...base, '--disk', b, '--input', stream]).seconds);
    const g0 = Date.now();
    fs.truncateSync(b, 3072 * 1024 * 1024);
    t('grow', (Date.now() - g0) / 1000);
    t('boot-import', await boot(b, true));
    t('rename', cli(['run', 'rename', ...base, '--disk', b, '--name', 'instance1-renamed.example.com']).seconds);
    t('rename', cli(['run', 'rename', ...base, '--disk', b, '--name', 'instance1-renamed.example.com', '--old-name', 'instance1-renamed.example.com']).seconds);
    t('reinstall', cli(['run', 'create', ...base, '--disk', a, '--reinstall']).seconds);
  } finally {
    for (const f of [a, b]) {
      lib.releaseDisk(f);
      fs.rmSync(f, { force: true });
    }
    fs.rmSync(stream, { force: true });
  }
  const plainSum = Object.values(plain).reduce((x, y) => x + y, 0);
  const steps = Object.fromEntries(run.steps.map((s) => [s.step, s.seconds]));
  const boots = (steps.boot || 0) + (steps['boot-import'] || 0);
  const overlap = run.steps.find((s) => s.step === 'boot');
  const rows = [
    {
      part: 'test',
      item: 'ganeti-os test: wall time vs the sum of its steps (boots overlap)',
      value: r.seconds,
      unit: 's',
      baseline: 'the sum of its steps',
      baselineValue: run.stepSeconds,
      ratio: lib.ratio(r.seconds, run.stepSeconds),
      target: '≤ 0.6×',
      ok: r.seconds <= 0.6 * run.stepSeconds,
      note: `load average (1, 5, 15 min) ${loadBefore} before, ${loadAfter} after; ${overlap && overlap.start !== undefined ? run.steps.map((s) => `${s.step} ${s.start.toFixed(0)}+${s.seconds.toFixed(0)}`).join(', ') + ' (start+seconds)' : 'no step start times (sequential)'}`,
    },
    {
      part: 'test',
      item: 'ganeti-os test: debian, kernel_path= (two TCG boots), warm cache',
      value: r.seconds,
      unit: 's',
      baseline: 'the same steps by hand',
      baselineValue: plainSum,
      ratio: lib.ratio(r.seconds, plainSum),
      note: `its steps add up to ${run.stepSeconds.toFixed(1)} s, boots ${boots.toFixed(0)} s (by hand ${(plain.boot + plain['boot-import']).toFixed(0)} s); ${run.steps.map((s) => `${s.step} ${s.seconds.toFixed(1)}`).join(', ')}`,
    },
    {
      part: 'test',
      item: 'the same steps by hand (ganeti-os run per script, QEMU per boot), sum',
      value: plainSum,
      unit: 's',
      note: Object.entries(plain)
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(', '),
    },
  ];
  if (rssKiB) rows.push({ part: 'memory', item: 'peak RSS: ganeti-os test process (streams 400+ MiB, two boots)', value: rssKiB / 1024, unit: 'MiB', note: 'VmHWM of the node process itself, sampled every 0.2 s; scripts and QEMU are its children' });
  return { rows, details: { test: doc, plain } };
}

module.exports = { runTestPart };
