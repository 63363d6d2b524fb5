/**
 * `run` builds the instance `gnt-instance add` builds and never writes over a disk in use:
 * default NIC, LC_ALL=C for export/import, verify's message from its own run only, rename's
 * default old name, `-` for standard input/output, refused disk shapes (0 MiB, a file as a
 * plain disk, a block device as a file disk), root only, a summary of what was installed,
 * progress and the real error lines of a long create; disks mounted (directly, through a
 * partition of a loop device, through another loop device on the same file), active swap,
 * busy, given twice, or named as the export/import stream.
 */
// The export/import stream through standard output and input is binary: node:child_process's
// spawnSync gives it as a Buffer (runCli and runSync decode it as UTF-8).
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Context } from '../src/context';
import { main } from '../src/main';
import { def, writeCase } from './helpers/corpus';
import { detachLoop, unmount } from '../src/system/kernel';
import { runSync, startProcess } from '../src/system/process';
import { BIN, binForOtherUser, cli, runCli, runCliAs, scriptedPrompter, tempDir } from './helpers/cli';
import { releaseResources, resources, sh } from './helpers/disks';
import { describeSystem } from './helpers/system';

const DUMP_ENV = '#!/bin/bash\nenv | sort\n';
const EXPORT = '#!/bin/bash\nset -e\nprintf \'%s\\n\' "$(stat -c %s "$EXPORT_DEVICE")" >&"$EXP_SIZE_FD"\ncat "$EXPORT_DEVICE"\n';
const IMPORT = '#!/bin/bash\nset -e\ncat > "$IMPORT_DEVICE"\n';
const VERIFY_FAIL = '#!/bin/bash\necho "refused value $OSP_FILESYSTEM"\nexit 1\n';

const sha = (p: string) => crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');

describeSystem('run builds what gnt-instance add builds and refuses disks in use', { root: true, ganeti: true, commands: ['losetup', 'mkfs.ext4', 'mount', 'sfdisk', 'mkswap', 'swapon', 'setpriv', 'python3'] }, () => {
  let root: string;
  let osDir: string;
  let logs: string;

  beforeAll(() => {
    root = tempDir('runref');
    logs = path.join(root, 'log');
    const x = { mode: 0o755 };
    osDir = writeCase(path.join(root, 'os'), {
      name: 'refos',
      files: def({ create: { ...x, content: DUMP_ENV }, rename: { ...x, content: DUMP_ENV }, export: { ...x, content: EXPORT }, import: { ...x, content: IMPORT }, verify: { ...x, content: VERIFY_FAIL } }),
    });
  });
  afterAll(() => {
    releaseResources(root, root);
    fs.rmSync(root, { recursive: true, force: true });
  });

  const env = async (args: string[]) => {
    const r = await cli(root, ['run', ...args, '--os-dir', osDir, '--print-env']);
    expect(r.stderr).not.toMatch(/error/);
    return JSON.parse(r.stdout) as Record<string, string>;
  };
  const img = (name: string, mib = 8) => {
    const p = path.join(root, name);
    fs.rmSync(p, { force: true });
    fs.writeFileSync(p, '');
    fs.truncateSync(p, mib * 1024 * 1024);
    return p;
  };

  it('without --nic the instance has one NIC as gnt-instance add makes it; --no-nics has none', async () => {
    const e = await env(['create']);
    expect(e.NIC_COUNT).toBe('1');
    expect(e.NIC_0_MAC).toMatch(/^aa:00:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
    expect(e.NIC_0_MODE).toBe('bridged');
    expect(e.NIC_0_LINK).toBe(e.NIC_0_BRIDGE);
    expect((await env(['create', '--no-nics'])).NIC_COUNT).toBe('0');
    const both = await cli(root, ['run', 'create', '--os-dir', osDir, '--no-nics', '--nic', 'ip=192.0.2.1', '--print-env']);
    expect(both.code).toBe(2);
  });

  it('export and import get LC_ALL=C, as the import-export daemon sets it; create does not', async () => {
    const d = img('lc.img');
    expect((await env(['export', '--disk', d])).LC_ALL).toBe('C');
    expect((await env(['import', '--disk', d])).LC_ALL).toBe('C');
    expect((await env(['create', '--disk', d])).LC_ALL).toBeUndefined();
  });

  it('rename without --old-name: OLD_INSTANCE_NAME is the default instance name, not the new name', async () => {
    const e = await env(['rename', '--name', 'web2.example.com']);
    expect(e.INSTANCE_NAME).toBe('web2.example.com');
    expect(e.OLD_INSTANCE_NAME).toBe('instance1.example.com');
  });

  it("a failed verify quotes only its own run's output, even with earlier runs in the same log", async () => {
    // Ganeti's log names change once a second: fill the next seconds' logs with an earlier run's output.
    const dir = path.join(root, 'vlog');
    fs.mkdirSync(dir, { recursive: true });
    const p = (n: number) => String(n).padStart(2, '0');
    for (let s = 0; s < 6; s++) {
      const d = new Date(Date.now() + s * 1000);
      const ts = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}_${p(d.getHours())}_${p(d.getMinutes())}_${p(d.getSeconds())}`;
      fs.writeFileSync(path.join(dir, `verify-refos-${ts}.log`), 'refused value EARLIER\n');
    }
    const r = await cli(root, ['run', 'verify', '--os-dir', osDir, '--osparam', 'filesystem=NOW', '--log-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('OS validation script failed (exited with exit code 1), output: refused value NOW');
    expect(r.stderr).not.toContain('EARLIER');
  });

  it('--output - streams to standard output and --input - reads standard input; no file named - appears', () => {
    const d = img('std.img', 2);
    fs.writeFileSync(d, crypto.randomBytes(2 * 1024 * 1024));
    const out = spawnSync(process.execPath, [BIN, 'run', 'export', '--os-dir', osDir, '--disk', d, '--output', '-', '--log-dir', logs], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
    expect(out.status).toBe(0);
    expect(Buffer.compare(out.stdout, fs.readFileSync(d))).toBe(0);
    const target = img('std-target.img', 2);
    const inp = spawnSync(process.execPath, [BIN, 'run', 'import', '--os-dir', osDir, '--disk', target, '--input', '-', '--log-dir', logs], { cwd: root, input: out.stdout });
    expect(inp.status).toBe(0);
    expect(sha(target)).toBe(sha(d));
    expect(fs.existsSync(path.join(root, '-'))).toBe(false);
    expect(fs.existsSync(path.join(osDir, '-'))).toBe(false);
    const json = runCli(['run', 'export', '--os-dir', osDir, '--disk', d, '--output', '-', '--json'], { cwd: root, env: { ...process.env } });
    expect(json.code).toBe(2);
  });

  it('refuses a 0 MiB disk, a regular file as a plain disk and a block device as a file disk, creating nothing', async () => {
    const zero = path.join(root, 'zero.img');
    let r = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', `${zero}:0`, '--log-dir', logs]);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/disk 0: size 0/)]);
    expect(fs.existsSync(zero)).toBe(false);
    fs.writeFileSync(zero, '');
    r = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', zero, '--log-dir', logs]);
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/holds less than 1 MiB \(0 bytes\)/)]);
    const plainNew = path.join(root, 'plain-new.img');
    r = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk-template', 'plain', '--disk', `${plainNew}:8`, '--log-dir', logs]);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/plain disk template takes block devices/)]);
    expect(fs.existsSync(plainNew)).toBe(false);
    const f = img('plain.img');
    r = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk-template', 'plain', '--disk', f, '--log-dir', logs]);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/is a regular file: use --disk-template file/)]);
    const loop = sh('losetup', ['--find', '--show', f]).trim();
    try {
      r = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', loop, '--log-dir', logs]);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/is a block device, but the file disk template takes regular files/)]);
    } finally {
      sh('losetup', ['--detach', loop]);
    }
  });

  it('refuses to run create as another user than root, naming it', () => {
    // That user runs a copy of the CLI when the checkout is closed to it (a clone under /root).
    const other = binForOtherUser();
    try {
      const r = runCliAs(other, ['run', 'create', '--os-dir', osDir], { env: { HOME: '/nonexistent' } });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/create runs as root on a Ganeti node, and this is user 65534/);
      fs.chmodSync(root, 0o755); // the definition readable by the other user
      const e = runCliAs(other, ['run', 'create', '--os-dir', osDir, '--print-env'], { env: { ...process.env } });
      expect(e.stderr).not.toMatch(/MODULE_NOT_FOUND|error/);
      expect(e.code).toBe(0);
    } finally {
      other.dispose();
    }
  });

  it("as another user, a loop device on a file that user cannot see (another's, in a closed directory) is not an error", () => {
    // Everything made here is undone in `finally`, whichever step fails (the loop included).
    const closed = tempDir('closed');
    let loop: string | undefined;
    let other: ReturnType<typeof binForOtherUser> | undefined;
    let logDir: string | undefined;
    try {
      const hidden = path.join(closed, 'hidden.img');
      fs.writeFileSync(hidden, '');
      fs.truncateSync(hidden, 8 * 1024 * 1024);
      loop = sh('losetup', ['--find', '--show', hidden]).trim();
      other = binForOtherUser();
      logDir = tempDir('otherlog');
      fs.chmodSync(logDir, 0o777);
      fs.chmodSync(root, 0o755);
      const d = img('seen.img');
      fs.chmodSync(d, 0o666);
      const r = runCliAs(other, ['run', 'verify', '--os-dir', osDir, '--disk', d, '--log-dir', logDir], { env: { HOME: '/nonexistent' } });
      expect(r.stderr).not.toMatch(/internal error|EACCES/);
      expect(r.stderr).toMatch(/refused value/);
      expect(r.code).toBe(1);
    } finally {
      other?.dispose();
      if (loop) sh('losetup', ['--detach', loop]);
      fs.rmSync(closed, { recursive: true, force: true });
      if (logDir) fs.rmSync(logDir, { recursive: true, force: true });
    }
  });

  it('says what create installed on disk 0 and why it does not boot by itself', async () => {
    const d = img('summary.img');
    const r = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', d, '--log-dir', logs, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.installed).toMatchObject({ bootsByItself: false, kernels: [], bootLoader: null, filesystem: null });
    expect(j.installed.reason).toMatch(/no filesystem found/);
    const text = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', d, '--log-dir', logs]);
    expect(text.stderr).toMatch(/installed on disk 0: no root filesystem, no kernel, no boot loader: does not boot by itself/);
    // An ext4 root with /etc and no kernel, under the hypervisor's default kernel_path.
    sh('mkfs.ext4', ['-q', '-F', d]);
    sh('debugfs', ['-w', '-R', 'mkdir /etc', d]);
    const k = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', d, '--log-dir', logs, '--json']);
    expect(JSON.parse(k.stdout).installed).toMatchObject({ filesystem: 'ext4', partitionStyle: 'none', reason: expect.stringMatching(/boots the node's kernel \(kernel_path=\/boot\/vmlinuz-3-kvmU\)/) });
    const own = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', d, '--log-dir', logs, '--json', '--hvparam', 'kernel_path=']);
    expect(JSON.parse(own.stdout).installed.reason).toMatch(/installed no kernel, and the hypervisor settings boot from the disk/);
  });

  it('shows the script\'s latest log line as progress, and the real error lines of a failed create', async () => {
    const slow = writeCase(path.join(root, 'slowos'), {
      name: 'slowos',
      files: def({
        create: {
          mode: 0o755,
          content: '#!/bin/bash\necho "I: downloading 42 packages"\nsleep 1.5\necho "E: The repository does not have a Release file"\nfor i in $(seq 1 25); do echo "cleanup $i"; done\nexit 1\n',
        },
      }),
    });
    const lines: string[] = [];
    let stderr = '';
    const ctx: Context = {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: root },
      interactive: false,
      prompter: scriptedPrompter([]),
      log: { info: (m) => void (stderr += m + '\n'), warn: (m) => void (stderr += m + '\n') },
      out: { write: () => undefined },
      progress: (l) => void lines.push(l),
    };
    const code = await main(['run', 'create', '--os-dir', slow, '--log-dir', logs], ctx);
    expect(code).toBe(1);
    expect(lines.some((l) => /^create \ds: I: downloading 42 packages$/.test(l))).toBe(true);
    expect(lines[lines.length - 1]).toBe('');
    expect(stderr).toContain('cleanup 25');
    expect(stderr).toMatch(/earlier errors in the log:\n {2}E: The repository does not have a Release file/);
  });

  describe('disks in use', () => {
    let mnt: string;
    beforeAll(() => {
      mnt = path.join(root, 'mnt');
      fs.mkdirSync(mnt);
    });
    /** Run create on the disk, expect the refusal and an untouched disk. */
    const refused = async (disk: string, re: RegExp, extra: string[] = []) => {
      const before = fs.statSync(disk).isFile() ? sha(disk) : undefined;
      const r = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', disk, ...extra, '--log-dir', logs]);
      expect(r.stderr).toMatch(re);
      expect(r.code).toBe(1);
      if (before) expect(sha(disk)).toBe(before);
    };
    const withLoop = async (args: string[], fn: (loop: string) => Promise<void>) => {
      const loop = sh('losetup', ['--find', '--show', ...args]).trim();
      try {
        await fn(loop);
      } finally {
        unmount(mnt);
        detachLoop(loop);
      }
    };

    it('a filesystem mounted through a loop device on the file, and the loop device itself', async () => {
      const d = img('mounted.img', 16);
      sh('mkfs.ext4', ['-q', '-F', d]);
      await withLoop([d], async (loop) => {
        sh('mount', [loop, mnt]);
        await refused(d, new RegExp(`disk 0 \\(${d}\\) is in use: it is mounted on ${mnt} through ${loop}`));
        await refused(loop, new RegExp(`is in use: it is mounted on ${mnt}`), ['--disk-template', 'plain']);
      });
      expect(resources(root, root)).toEqual({ loops: [], mounts: [], temps: expect.anything() });
    });

    it('a partition mounted through another loop device on the same file (by offset), and through partx', async () => {
      const d = img('parted.img', 16);
      sh('sfdisk', ['--quiet', d], 'label: dos\nstart=2048, type=83\n');
      sh('mkfs.ext4', ['-q', '-F', '-E', `offset=${2048 * 512}`, d, '7M']);
      await withLoop(['--offset', String(2048 * 512), d], async (loop) => {
        sh('mount', [loop, mnt]);
        await refused(d, new RegExp(`is in use: it is mounted on ${mnt} through ${loop}`));
      });
      await withLoop([d], async (loop) => {
        sh('partx', ['-a', loop]);
        sh('mount', [`${loop}p1`, mnt]);
        await refused(d, new RegExp(`is in use: it is mounted on ${mnt} through ${loop}p1`));
        await refused(loop, new RegExp(`is in use: it is mounted on ${mnt} through ${loop}p1`), ['--disk-template', 'plain']);
      });
    });

    it('active swap', async () => {
      const d = img('swap.img', 16);
      await withLoop([d], async (loop) => {
        sh('mkswap', [loop]);
        sh('swapon', [loop]);
        try {
          await refused(d, /is in use: it is active swap/);
        } finally {
          runSync(['swapoff', loop]);
        }
      });
    });

    it('a block device another program holds open exclusively (O_EXCL)', async () => {
      const d = img('busy.img', 8);
      await withLoop([d], async (loop) => {
        const holder = startProcess(['python3', '-c', 'import os,sys,time; os.open(sys.argv[1], os.O_RDONLY|os.O_EXCL); print("held", flush=True); time.sleep(60)', loop], { stdio: ['ignore', 'pipe', 'inherit'] });
        try {
          await new Promise((resolve) => holder.stdout!.once('data', resolve));
          await refused(loop, /is in use: it is busy/, ['--disk-template', 'plain']);
        } finally {
          holder.kill('SIGKILL');
          await new Promise((resolve) => holder.once('exit', resolve));
        }
      });
    });

    it('the same disk twice (also as a loop device on the file), and a stream that is a disk', async () => {
      const d = img('twice.img', 4);
      let r = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', d, '--disk', path.relative(root, d), '--log-dir', logs]);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/disk 1 \(.*\) is the same data as disk 0/)]);
      await withLoop([d], async (loop) => {
        r = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', d, '--disk', `path=${loop},template=plain`, '--log-dir', logs]);
        expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/disk 1 \(.*\) is the same data as disk 0/)]);
      });
      fs.writeFileSync(d, crypto.randomBytes(4 * 1024 * 1024));
      const before = sha(d);
      r = await cli(root, ['run', 'export', '--os-dir', osDir, '--disk', d, '--output', d, '--log-dir', logs]);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/--output .* is disk 0 itself/)]);
      r = await cli(root, ['run', 'import', '--os-dir', osDir, '--disk', d, '--input', d, '--log-dir', logs]);
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/--input .* is disk 0 itself/)]);
      expect(sha(d)).toBe(before);
    });
  });
});
