/**
 * `test`'s "root fills the disk" check after a grown disk's boot (src/lifecycle/local.ts
 * fillsDisk), read from the disk as the read-only inspection does (debugfs at the root's
 * offset): the root may fill what lies from its start to the end of the disk, so a gpt disk
 * whose BIOS boot and EFI system partitions come before the root is full at 3038 of 3072 MiB.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fillsDisk } from '../src/lifecycle/local';
import { runSync } from '../src/system/process';
import { describeSystem } from './helpers/system';
import { tempDir } from './helpers/trees';

const MIB = 1024 * 1024;

describeSystem('root fills the disk (after a grown disk boots)', { commands: ['sfdisk', 'mke2fs', 'debugfs'] }, () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('fills-disk');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A sparse disk of `diskMiB` with an ext4 root holding /etc: at `startMiB` in partition 1 of a gpt table (the debian template's UEFI layout), or the whole disk. */
  function disk(diskMiB: number, fsMiB: number, startMiB: number): string {
    const file = path.join(dir, 'disk0.img');
    fs.closeSync(fs.openSync(file, 'w'));
    fs.truncateSync(file, diskMiB * MIB);
    if (startMiB) {
      const table = `label: gpt\n1 : start=${startMiB * 2048}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n2 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\n3 : start=4096, size=${(startMiB - 2) * 2048}, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n`;
      const r = runSync(['sfdisk', '--quiet', '--no-reread', '--no-tell-kernel', file], { input: table });
      if (r.status !== 0) throw new Error(r.stderr);
    }
    const etc = path.join(dir, 'root', 'etc');
    fs.mkdirSync(etc, { recursive: true });
    fs.writeFileSync(path.join(etc, 'hostname'), 'instance1\n');
    const mk = runSync(['mke2fs', '-q', '-F', '-t', 'ext4', '-d', path.join(dir, 'root'), '-E', `offset=${startMiB * MIB}`, file, `${fsMiB * 1024}`]);
    if (mk.status !== 0) throw new Error(mk.stderr);
    return file;
  }

  const fill = (file: string) => fillsDisk(file, undefined).find((c) => c.name === 'root fills the disk')!;

  it('gpt with the BIOS boot and EFI system partitions first: full when the root reaches the end of the disk', () => {
    const c = fill(disk(3072, 3038 - 1, 34));
    expect(c).toMatchObject({ ok: true, detail: 'root filesystem 3037 MiB of the 3038 MiB from its start at 34 MiB to the end of the 3072 MiB disk after the boot' });
  });

  it('gpt: a root that did not grow is reported, with its share of the room it had', () => {
    const c = fill(disk(3072, 2526, 34));
    expect(c.ok).toBe(false);
    expect(c.detail).toMatch(/^root filesystem 2526 MiB of the 3038 MiB .* \(83\.1%\) after the boot: the grown disk was not filled$/);
  });

  it('a whole-disk root (partition-style none) is measured against the whole disk', () => {
    expect(fill(disk(1024, 1024, 0))).toMatchObject({ ok: true, detail: 'root filesystem 1024 MiB of the 1024 MiB disk after the boot' });
    expect(fill(disk(1024, 900, 0)).ok).toBe(false);
  });
});
