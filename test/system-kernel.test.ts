/**
 * The kernel layer's readers (src/system/kernel.ts) against this machine's own tables: the
 * mount table as findmnt reads it, process groups, loop devices as /sys shows them.
 */
import * as fs from 'node:fs';
import { atOrUnder, comm, groupAlive, killGroup, loopDevices, mountTable, mountsUnder, parseMountinfo, pids, startTime, swaps } from '../src/system/kernel';
import { runSync, startProcess } from '../src/system/process';

describe('the mount table', () => {
  test('parseMountinfo reads every field, octal escapes undone', () => {
    const text = [
      '36 35 98:0 /mnt1 /mnt/parent\\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
      '37 35 7:5 / /srv/a\\011tab rw shared:2 - ext4 /dev/loop5p1 rw',
      '38 35 0:22 / /proc rw,nosuid - proc proc rw',
      '',
    ].join('\n');
    expect(parseMountinfo(text)).toEqual([
      { devNo: '98:0', root: '/mnt1', target: '/mnt/parent dir', options: 'rw,noatime', optional: 'master:1', fsType: 'ext3', source: '/dev/root', superOptions: 'rw,errors=continue' },
      { devNo: '7:5', root: '/', target: '/srv/a\ttab', options: 'rw', optional: 'shared:2', fsType: 'ext4', source: '/dev/loop5p1', superOptions: 'rw' },
      { devNo: '0:22', root: '/', target: '/proc', options: 'rw,nosuid', optional: '', fsType: 'proc', source: 'proc', superOptions: 'rw' },
    ]);
  });

  test('mountTable is what findmnt reads from /proc/self/mountinfo', () => {
    const r = runSync(['findmnt', '--raw', '--noheadings', '--output', 'TARGET,FSTYPE,MAJ:MIN'], { env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } });
    if (r.error) return; // no findmnt: the synthetic case above still holds
    expect(r.status).toBe(0);
    // findmnt --raw writes blanks and the like as \x20
    const unhex = (s: string) => s.replace(/\\x([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    const theirs = r.stdout.trim().split('\n').map((l) => l.split(' ').map(unhex).join(' '));
    const ours = mountTable().map((m) => `${m.target} ${m.fsType} ${m.devNo}`);
    expect(ours.sort()).toEqual(theirs.sort());
    expect(mountTable().length).toBe(fs.readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').length);
  });

  test('mountsUnder takes a directory and what lies below it, not a sibling with the same prefix', () => {
    expect(mountsUnder('/proc')).toContain('/proc');
    expect(mountsUnder('/pro')).toEqual([]);
    expect(atOrUnder('/a/b', '/a')).toBe(true);
    expect(atOrUnder('/ab', '/a')).toBe(false);
    expect(atOrUnder('/a', '/a')).toBe(true);
    expect(atOrUnder('/a/b', '/')).toBe(true);
  });
});

describe('processes', () => {
  test('pids lists this process and a child; startTime is field 22 of /proc/PID/stat; comm its name; gone is empty', async () => {
    const child = startProcess(['sleep', '30'], { stdio: 'ignore' });
    try {
      const pid = child.pid as number;
      expect(pids()).toEqual(expect.arrayContaining([process.pid, pid]));
      const awk = runSync(['sh', '-c', `sed 's/.*) //' /proc/${pid}/stat | awk '{print $20}'`]);
      expect(startTime(pid)).toBe(awk.stdout.trim());
      expect(startTime(pid)).toMatch(/^\d+$/);
      expect(comm(pid)).toBe('sleep');
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((r) => child.once('close', r));
    expect(startTime(child.pid as number)).toBe('');
    expect(comm(child.pid as number)).toBe('');
  });

  test('swaps names what /proc/swaps lists (first column)', () => {
    const text = fs.readFileSync('/proc/swaps', 'utf8');
    expect(swaps().length).toBe(text.trim().split('\n').length - 1);
  });
});

describe('process groups', () => {
  test('groupAlive and killGroup see and end a whole group', async () => {
    const child = startProcess(['sh', '-c', 'sleep 60 & sleep 60 & wait'], { env: { PATH: '/usr/bin:/bin' }, group: true, stdio: 'ignore' });
    const closed = new Promise((resolve) => child.on('close', resolve));
    const pgid = child.pid as number;
    expect(groupAlive(pgid)).toBe(true);
    expect(killGroup(pgid, 'SIGKILL')).toBe(true);
    await closed;
    for (let i = 0; i < 50 && groupAlive(pgid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(groupAlive(pgid)).toBe(false);
    expect(killGroup(pgid, 'SIGKILL')).toBe(false);
  });
});

describe('loop devices', () => {
  test('loopDevices lists what /sys/class/block shows (names, backing files)', () => {
    const listed = loopDevices();
    const sys = fs.existsSync('/sys/class/block') ? fs.readdirSync('/sys/class/block').filter((n) => /^loop\d+$/.test(n) && fs.existsSync(`/sys/class/block/${n}/loop/backing_file`)) : [];
    expect(listed.map((l) => l.name).sort()).toEqual(sys.map((n) => `/dev/${n}`).sort());
    for (const l of listed) expect(l.backFile).not.toMatch(/ \(deleted\)$/);
  });
});
