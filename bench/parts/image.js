'use strict';
/**
 * The image template: create from a cached cloud image onto a 10 GiB sparse file disk through
 * Ganeti's InstanceOsAdd (against the floor: `qemu-img convert -n` of the same image onto the
 * same kind of disk, which create cannot beat), and its export stream against the image's
 * allocated size (and the time of export and import).
 *
 * The image is the bootable Debian cloud image of the end-to-end test (test/helpers/
 * cloud-image.sh), taken from its cache /var/cache/ganeti-os/test-images when a test run left
 * one there, else built into the bench's temporary directory (about two minutes).
 */
const fs = require('node:fs');
const path = require('node:path');
const lib = require('../lib');

const ROOT = path.resolve(__dirname, '..', '..');
const TEST_IMAGES = '/var/cache/ganeti-os/test-images';
const GIB = 10;

function prerequisites() {
  if (process.getuid && process.getuid() !== 0) return 'needs root';
  if (!lib.ganetiAvailable()) return 'needs ganeti-3.0';
  if (!lib.templateAvailable('image')) return 'no image template on this branch';
  for (const c of ['qemu-img', 'mmdebstrap', 'zstd', 'sfdisk', 'resize2fs']) if (!lib.have(c)) return `needs ${c}`;
  return null;
}

function cloudImage(work, log) {
  const cached = fs.existsSync(TEST_IMAGES)
    ? fs.readdirSync(TEST_IMAGES).filter((f) => /^debian-cloud-.*\.qcow2$/.test(f)).map((f) => path.join(TEST_IMAGES, f))
    : [];
  if (cached.length) return cached.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
  log('image: building the Debian cloud test image (test/helpers/cloud-image.sh) ...');
  const out = path.join(work, 'debian-cloud.qcow2');
  lib.run('bash', [path.join(ROOT, 'test', 'helpers', 'cloud-image.sh'), out, ROOT], { stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

async function runImage(ctx) {
  const { opts, log } = ctx;
  const items = ['create (cached image, 10 GiB disk)', 'export stream vs image allocated', 'export (10 GiB disk)', 'import (10 GiB disk)'];
  const why = prerequisites();
  if (why) return { rows: items.map((item) => ({ part: 'image', item, unavailable: why })), details: {} };
  const work = lib.tempDir('image');
  const image = cloudImage(work, log);
  const sha = lib.run('sha256sum', [image]).stdout.split(' ')[0];
  lib.run(process.execPath, [path.join(ROOT, 'bin', 'ganeti-os.js'), 'new', 'cloud', '--template', 'image', '--variant', 'debian12', '--yes'], { cwd: work });
  const osDir = path.join(work, 'cloud');
  lib.run(process.execPath, [path.join(ROOT, 'bin', 'ganeti-os.js'), 'add-variant', 'debian12', '--set', `IMAGE=${image}`, '--set', `SHA256=${sha}`], { cwd: osDir });
  fs.appendFileSync(path.join(osDir, 'defaults.conf'), `CACHE_DIR=${path.join(work, 'cache')}\n`);
  const spec = (disk) => ({
    name: 'bench1.example.com',
    os: 'cloud+debian12',
    os_dir: osDir,
    disks: [{ path: disk, size: GIB * 1024 }],
    nics: [{ mac: 'aa:00:00:12:34:56', ip: '192.0.2.10', network: { subnet: '192.0.2.0/24', gateway: '192.0.2.1' } }],
    osparams: {},
  });
  const create = async (n) => {
    const disk = lib.sparseDisk(path.join(work, `disk-${n}.img`), GIB * 1024);
    try {
      const r = await lib.ganeti({ action: 'add', instance: spec(disk), logdir: path.join(work, 'log') });
      if (!r.answer.ok) throw new Error(`image create failed: ${r.answer.error}`);
      return { seconds: r.seconds, disk };
    } finally {
      lib.releaseDisk(disk);
    }
  };

  // The first create fills the cache (copy, checksum, probe); it is not measured.
  const cold = await create(0);
  log(`image: first create (fills the cache) ${cold.seconds.toFixed(2)} s`);
  const runs = opts.quick ? 1 : 3;
  const creates = [];
  const floors = [];
  for (let i = 1; i <= runs; i++) {
    creates.push((await create(i)).seconds);
    const disk = lib.sparseDisk(path.join(work, `floor-${i}.img`), GIB * 1024);
    floors.push(lib.run('qemu-img', ['convert', '-n', '-W', '-f', 'qcow2', '-O', 'raw', image, disk]).seconds);
    fs.rmSync(disk, { force: true });
  }
  const created = path.join(work, `disk-${runs}.img`);
  const stream = path.join(work, 'stream');
  const e = await lib.ganeti({ action: 'export', instance: spec(created), index: 0, output: stream });
  lib.releaseDisk(created);
  if (!e.answer.ok) throw new Error(`image export failed: ${e.answer.stderr}`);
  const target = lib.sparseDisk(path.join(work, 'import.img'), GIB * 1024);
  const i = await lib.ganeti({ action: 'import', instance: spec(target), index: 0, input: stream });
  lib.releaseDisk(target);
  if (!i.answer.ok) throw new Error(`image import failed: ${i.answer.stderr}`);

  const imageAllocated = lib.allocatedBytes(image);
  const diskAllocated = lib.allocatedBytes(created);
  const streamBytes = fs.statSync(stream).size;
  const create1 = lib.median(creates);
  const floor = lib.median(floors);
  const details = { image, imageAllocated, diskAllocated, streamBytes, creates, floors, coldCreate: cold.seconds, exportSeconds: e.seconds, importSeconds: i.seconds };
  fs.rmSync(stream, { force: true });
  return {
    rows: [
      { part: 'image', item: items[0], value: create1, unit: 's', baseline: 'qemu-img convert -n alone', baselineValue: floor, ratio: lib.ratio(create1, floor), note: `first create (copy into the cache, sha256, probe) ${cold.seconds.toFixed(2)} s; includes Ganeti harness start-up` },
      { part: 'image', item: items[1], value: streamBytes, unit: 'B', baseline: 'qcow2 image allocated', baselineValue: imageAllocated, ratio: lib.ratio(streamBytes, imageAllocated), note: `disk allocated after create ${(diskAllocated / 1024 ** 2).toFixed(0)} MiB; zstd -3` },
      { part: 'image', item: items[2], value: e.seconds, unit: 's' },
      { part: 'image', item: items[3], value: i.seconds, unit: 's' },
    ],
    details,
  };
}

module.exports = { runImage };
