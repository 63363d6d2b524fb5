/**
 * Loop devices and mounts through the kernel layer (src/system/kernel.ts) for real, as root:
 * attach, find by backing file (also through another path), list as losetup does, release
 * everything under a directory. HEAVY: run under flock /tmp/ganeti-os-heavy.lock.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { attachLoop, detachLoop, heldUnder, loopDevices, loopsBackedBy, loopsBackedUnder, mountsUnder, releaseUnder, withBackingInodes } from '../src/system/kernel';
import { runSync } from '../src/system/process';
import { describeSystem } from './helpers/system';

const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };

describeSystem('loop devices and mounts (kernel layer)', { root: true, commands: ['losetup', 'partx', 'mkfs.ext4', 'sfdisk'] }, () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gos kernel '))));
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
      expect(runSync(['mount', `${dev}p1`, inside], { env: ENV }).status).toBe(0);
      fs.mkdirSync(path.join(inside, 'sub'));
      expect(runSync(['mount', '-t', 'tmpfs', 'tmpfs', path.join(inside, 'sub')], { env: ENV }).status).toBe(0);
      elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'gos-kernel-elsewhere-'));
      expect(runSync(['mount', `${dev}p1`, elsewhere], { env: ENV }).status).toBe(0);
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
        runSync(['umount', '--lazy', elsewhere], { env: ENV });
        fs.rmSync(elsewhere, { recursive: true, force: true });
      }
    }
  });
});
