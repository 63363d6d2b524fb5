/**
 * Loop devices and mounts through the kernel layer (src/system/kernel.ts) for real, as root:
 * attach, find by backing file (also through another path), list as losetup does, release
 * everything under a directory. Attaches loop devices of the machine's: the system lane runs it
 * alone.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { attachLoop, blockName, blockSectors, detachLoop, devNoOf, devString, heldUnder, isPartition, loopDevices, loopsBackedBy, loopsBackedUnder, mount, mountTable, mountsUnder, partitionParent, partitionsOf, releaseUnder, unmount, withBackingInodes } from '../src/system/kernel';
import { runSync } from '../src/system/process';
import { describeSystem } from './helpers/system';
import { tempDir } from './helpers/trees';

const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };

describeSystem('loop devices and mounts (kernel layer)', { root: true, commands: ['losetup', 'partx', 'mkfs.ext4', 'sfdisk'] }, () => {
  let dir: string;
  beforeEach(() => (dir = tempDir('kernel with spaces')));
  afterEach(() => {
    releaseUnder(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const disk = (name: string, mib = 16) => {
    const f = path.join(dir, name);
    fs.closeSync(fs.openSync(f, 'w'));
    fs.truncateSync(f, mib * 1024 * 1024);
    return f;
  };

  test('attachLoop, loopsBackedBy (also through a hard link), the losetup view, detachLoop', () => {
    const f = disk('a.img');
    const dev = attachLoop(f, { offset: 1024 * 1024 });
    expect(dev).toMatch(/^\/dev\/loop\d+$/);
    const mine = loopDevices().find((l) => l.name === dev);
    expect(mine).toMatchObject({ backFile: f, offset: 1024 * 1024, deleted: false });
    fs.linkSync(f, path.join(dir, 'link.img'));
    expect(loopsBackedBy(path.join(dir, 'link.img')).map((l) => l.name)).toEqual([dev]);
    // The same facts losetup prints
    const lo = JSON.parse(runSync(['losetup', '--list', '--json', '--output', 'NAME,BACK-FILE,OFFSET,BACK-INO'], { env: ENV }).stdout).loopdevices as Record<string, unknown>[];
    const row = lo.find((r) => r.name === dev)!;
    expect(row['back-file']).toBe(f);
    expect(Number(row.offset)).toBe(1024 * 1024);
    const [withIno] = withBackingInodes([mine!]);
    expect(withIno.backIno).toBe(fs.statSync(f).ino);
    expect(loopsBackedUnder(dir).map((l) => l.name)).toEqual([dev]);
    expect(detachLoop(dev)).toBe(true);
    expect(loopsBackedBy(f)).toEqual([]);
    expect(() => attachLoop(path.join(dir, 'missing.img'))).toThrow(/^losetup --find --show .*missing\.img' exited with 1: /);
  });

  test('a deleted backing file is named without " (deleted)" and flagged', () => {
    const f = disk('gone.img');
    const dev = attachLoop(f);
    try {
      fs.rmSync(f);
      expect(loopDevices().find((l) => l.name === dev)).toMatchObject({ backFile: f, deleted: true });
      expect(heldUnder(dir).loops).toEqual([dev]);
    } finally {
      detachLoop(dev);
    }
  });

  test('releaseUnder unmounts (a partition of a loop mounted elsewhere too) and detaches, innermost first', () => {
    const f = disk('p.img', 32);
    runSync(['sfdisk', '--quiet', f], { env: ENV, input: 'label: dos\nstart=2048, type=83\n' });
    const dev = attachLoop(f, { partscan: true });
    let elsewhere: string | undefined;
    try {
      runSync(['partx', '-a', dev], { env: ENV }); // in case --partscan was not honoured
      expect(runSync(['mkfs.ext4', '-q', `${dev}p1`], { env: ENV }).status).toBe(0);
      const inside = path.join(dir, 'mnt');
      fs.mkdirSync(inside);
      mount(`${dev}p1`, inside);
      fs.mkdirSync(path.join(inside, 'sub'));
      mount('tmpfs', path.join(inside, 'sub'), { type: 'tmpfs', options: ['size=1m'] });
      expect(mountTable().find((m) => m.target === path.join(inside, 'sub'))).toMatchObject({ fsType: 'tmpfs', superOptions: expect.stringContaining('size=1024k') });
      elsewhere = tempDir('kernel-elsewhere');
      mount(`${dev}p1`, elsewhere);
      expect(mountTable().find((m) => m.target === elsewhere)?.options).toMatch(/^rw,/);
      const held = heldUnder(dir);
      expect(held.loops).toEqual([dev]);
      expect(held.mounts.sort()).toEqual([elsewhere, inside, path.join(inside, 'sub')].sort());
      expect(releaseUnder(dir)).toEqual(held);
      expect(mountsUnder(dir)).toEqual([]);
      expect(mountsUnder(elsewhere)).toEqual([]);
      expect(loopsBackedBy(f)).toEqual([]);
    } finally {
      releaseUnder(dir);
      if (elsewhere) {
        unmount(elsewhere, { lazy: true });
        fs.rmSync(elsewhere, { recursive: true, force: true });
      }
    }
  });

  test('block devices through sysfs: name and size of a device number, partitions, their parent, devNo; mount refuses with its message', () => {
    const f = disk('b.img', 32);
    runSync(['sfdisk', '--quiet', f], { env: ENV, input: 'label: dos\nstart=2048, type=83\n' });
    const dev = attachLoop(f, { partscan: true });
    try {
      runSync(['partx', '-a', dev], { env: ENV }); // in case --partscan was not honoured
      const name = path.basename(dev);
      const rdev = fs.statSync(dev).rdev;
      expect(blockName(rdev)).toBe(name);
      expect(blockSectors(rdev)).toBe((32 * 1024 * 1024) / 512);
      expect(devNoOf(name)).toBe(devString(BigInt(rdev)));
      expect(isPartition(name)).toBe(false);
      expect(partitionsOf(name)).toEqual([`${name}p1`]);
      expect(isPartition(`${name}p1`)).toBe(true);
      expect(partitionParent(`${name}p1`)).toBe(name);
      expect(blockSectors(fs.statSync(`${dev}p1`).rdev)).toBe((32 * 1024 * 1024) / 512 - 2048);
      const target = path.join(dir, 'unformatted');
      fs.mkdirSync(target);
      expect(() => mount(`${dev}p1`, target, { readOnly: true })).toThrow(/^mount -o ro \/dev\/loop\d+p1 .*unformatted' exited with \d+/);
    } finally {
      detachLoop(dev);
    }
  });
});
