/**
 * `ganeti-os test` end to end (the built CLI, as root, QEMU under TCG): the blank template is
 * reported as not bootable and passes; definitions broken on purpose fail with the failing step
 * named and its log shown and kept; Ctrl-C stops the scripts and QEMU and leaves no loop device,
 * mount or disk behind; the debian template passes with its defaults (no kernel: the node's),
 * with its own kernel (kernel_path=, gpt, a static NIC: two boots) and with the node's kernel
 * by -kernel/-initrd (partition-style none, DHCP: two boots). The import's disk grows before its
 * boot, which must fill it; the first boot overlaps export and import (step start times). Those run the template's default
 * variant, trixie; bookworm is built and booted to its login prompt once (its whole `test` under
 * FULL_MATRIX, `npm run test:matrix`).
 *
 * Time: the blank and broken cases take about a minute together (two 15 s boot timeouts); the
 * debian cases take 45 s + 2 × (2 TCG boots of ~50-120 s + ~40 s of scripts) with a warm cache,
 * plus ~30 s per release whose base system is not cached yet; bookworm's boot adds ~1.5 min
 * (its full lifecycle ~3-4 min).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BIN, tempDir } from './helpers/cli';
import { releaseResources, resources } from './helpers/disks';
import { FULL_MATRIX, describeSystem } from './helpers/system';
import { StepJson, testCli } from './helpers/test-run';
import { bootUntilReady } from '../src/boot/qemu';
import { consoleReady, consoleText } from '../src/boot/console';

const NEEDS = ['qemu-system-x86_64', 'debugfs', 'mke2fs', 'sfdisk', 'blkid', 'losetup', 'mmdebstrap', 'partx'];

describeSystem('ganeti-os test', { root: true, commands: NEEDS }, () => {
  let root: string;
  let work: string;
  beforeAll(() => {
    root = tempDir('testcmd');
    work = path.join(root, 'work');
    fs.mkdirSync(work);
  });
  afterAll(() => {
    releaseResources(root, root);
    fs.rmSync(root, { recursive: true, force: true });
  });

  const { cli, testJson, clearWork } = testCli(() => ({ root, work }));
  const newDef = (name: string, template: string) => {
    const r = cli(['new', name, '--template', template, '--yes']);
    expect(r.code).toBe(0);
    return path.join(root, name);
  };
  /** A blank definition with some scripts replaced. */
  const broken = (name: string, scripts: Record<string, string>) => {
    const dir = newDef(name, 'blank');
    for (const [s, body] of Object.entries(scripts)) fs.writeFileSync(path.join(dir, s), `#!/bin/bash\nset -e\n${body}\n`, { mode: 0o755 });
    return dir;
  };
  // An ext4 filesystem on the whole disk with /etc/hostname, made without mounting.
  const FS_CREATE = 'd=$(mktemp -d)\nmkdir -p "$d/etc" "$d/boot"\necho "$INSTANCE_NAME" > "$d/etc/hostname"\nmke2fs -q -F -t ext4 -d "$d" "$DISK_0_PATH"\nrm -rf "$d"';
  // The same with a "kernel" in /boot and boot code that loops forever (jmp $) where GRUB would be.
  const HANG_CREATE = FS_CREATE.replace('echo', ': > "$d/boot/vmlinuz-0-fake"\necho') + `\nprintf '\\xeb\\xfeGRUB' | dd of="$DISK_0_PATH" conv=notrunc status=none\nprintf '\\x55\\xaa' | dd of="$DISK_0_PATH" bs=1 seek=510 conv=notrunc status=none`;
  const workEmpty = () => expect(fs.readdirSync(work)).toEqual([]);

  it('passes for the blank template and reports it as not bootable; leaves nothing behind', () => {
    const dir = newDef('blank-os', 'blank');
    const t = testJson(['--os-dir', dir, '--disk-size', '64M']);
    expect(t.code).toBe(0);
    expect(t.doc.ok).toBe(true);
    expect(t.status).toEqual({ verify: 'passed', create: 'passed', boot: 'skipped', export: 'passed', import: 'passed', grow: 'passed', 'boot-import': 'skipped', rename: 'passed', reinstall: 'passed' });
    expect(t.step('boot').detail).toMatch(/not meant to boot by itself/);
    expect(t.run.logs).toBeNull();
    workEmpty();
    const own = testJson(['--os-dir', dir, '--disk-size', '64M', '--hvparam', 'kernel_path=']);
    expect(own.code).toBe(0);
    expect(own.step('boot').detail).toMatch(/^not meant to boot by itself: no filesystem found/);
    workEmpty();
    // People: one line per step on stderr, the verdict table on stdout.
    const human = cli(['test', '--os-dir', dir, '--disk-size', '64M', '--work-dir', work]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^STEP +RESULT +TIME +DETAIL\n/);
    // The table ends naming the release the run followed.
    expect(human.stdout).toMatch(/\nfollowed: Ganeti 3\.[01] \((installed on this node|--ganeti|none installed on this node: Debian \w+'s)\)\n$/);
    expect(human.stdout).toMatch(/^boot +skipped +the kvm hypervisor boots the node's kernel/m);
    expect(human.stderr).toMatch(/^✓ export disk 0 +\d+\.\d s +67108864 bytes streamed \(64\.0 MiB\), as announced$/m);
    expect(human.stderr).toMatch(/blank-os: every step that applies passed/);
    workEmpty();
  }, 120_000);

  const failsAt = (name: string, dir: string, step: string, detail: RegExp, logLine: RegExp, extra: string[] = [], timeoutS = 120) => {
    clearWork();
    const t = testJson(['--os-dir', dir, '--disk-size', '64M', ...extra], timeoutS);
    expect(t.code).toBe(1);
    expect(t.doc.ok).toBe(false);
    expect(t.status[step]).toBe('failed');
    expect(t.run.steps.filter((s) => s.status === 'failed').map((s) => s.step)[0]).toBe(step);
    expect(t.step(step).detail).toMatch(detail);
    expect(t.run.logs).toBeTruthy();
    for (const l of t.step(step).logs) expect(fs.existsSync(l)).toBe(true);
    if (logLine.source !== '(?:)') expect(t.step(step).logs.map((l) => fs.readFileSync(l, 'latin1')).join('\n')).toMatch(logLine);
    // For people: the step named, its log's last lines and path, where the logs are kept.
    clearWork();
    const h = cli(['test', '--os-dir', dir, '--disk-size', '64M', '--work-dir', work, ...extra], timeoutS);
    expect(h.code).toBe(1);
    const title = t.run.steps.find((s) => s.step === step)!;
    expect(h.stderr).toMatch(new RegExp(`failed: ${detail.source.replace(/^\^|\$$/g, '')}`));
    expect(h.stdout).toMatch(new RegExp(`^\\S.* +failed +`, 'm'));
    const kept = /logs kept in (\S+)/.exec(h.stderr)?.[1];
    expect(kept && fs.existsSync(path.join(kept, 'logs'))).toBeTruthy();
    expect(h.stderr).toMatch(/ {2}log: \S+/);
    expect(h.stderr).toMatch(new RegExp(`${name}: FAILED`));
    void title;
    // Disks and streams never outlive the run; only the logs stay.
    expect(fs.readdirSync(kept!)).toEqual(['logs']);
    expect(resources(work, work).loops).toEqual([]);
    return { t, h };
  };

  it('fails at create when create exits 1, showing its last log lines', () => {
    const dir = broken('bad-create', { create: 'echo "E: no mirror answers"\nexit 1' });
    const { t, h } = failsAt('bad-create', dir, 'create', /^create exited with exit code 1$/, /E: no mirror answers/);
    expect(t.step('create').logTail).toEqual(['E: no mirror answers']);
    expect(h.stderr).toContain('  | E: no mirror answers');
    expect(t.status).toMatchObject({ boot: 'skipped', export: 'skipped', import: 'skipped', rename: 'skipped', reinstall: 'skipped' });
  }, 120_000);

  it("fails at verify, before anything runs, when Ganeti's ValidateOS would crash (a blank parameters.list line)", () => {
    const dir = newDef('blank-param-line', 'blank');
    fs.appendFileSync(path.join(dir, 'parameters.list'), '\n');
    clearWork();
    const t = testJson(['--os-dir', dir, '--disk-size', '64M']);
    expect(t.code).toBe(1);
    expect(t.status.verify).toBe('failed');
    expect(t.step('verify').detail).toMatch(/^Ganeti's ValidateOS raises IndexError \(list index out of range\) before verify runs/);
    expect(t.status.create).toBe('failed');
    expect(t.step('create').detail).toMatch(/ValidateOS raises IndexError .* before create runs/);
    expect(t.status).toMatchObject({ boot: 'skipped', export: 'skipped', import: 'skipped', rename: 'skipped', reinstall: 'skipped' });
    clearWork();
  }, 120_000);

  it('fails at export when it streams less than it announced', () => {
    const dir = broken('short-export', { export: 'size=$(stat -c %s "$EXPORT_DEVICE")\necho "$size" >&"$EXP_SIZE_FD"\nhead -c $((size / 2)) "$EXPORT_DEVICE"' });
    failsAt('short-export', dir, 'export', /^export announced 67108864 bytes on EXP_SIZE_FD but streamed 33554432$/, /(?:)/);
  }, 120_000);

  it('fails at import when import ignores its input', () => {
    const dir = broken('lazy-import', { import: 'cat >/dev/null' });
    failsAt('lazy-import', dir, 'import', /^import succeeded but did not write to the disk \(it ignored its 67108864 byte input\)$/, /(?:)/);
  }, 120_000);

  it('fails at rename when rename does nothing', () => {
    const dir = broken('idle-rename', { create: FS_CREATE, rename: 'exit 0' });
    failsAt('idle-rename', dir, 'rename', /^rename succeeded but did nothing: \/etc\/hostname is still "instance1\.example\.com", not instance1-renamed\.example\.com$/, /(?:)/);
  }, 120_000);

  it('fails at boot when the disk does not boot, showing the console', () => {
    const dir = broken('no-boot', { create: HANG_CREATE });
    const { t } = failsAt('no-boot', dir, 'boot', /^no login prompt on the console within 10 s$/, /(?:)/, ['--hvparam', 'kernel_path=', '--boot-timeout', '10'], 240);
    expect(t.step('boot').logs[0]).toMatch(/console-disk0\.log$/);
    expect(t.status['boot-import']).toBe('failed');
  }, 300_000);

  it('Ctrl-C stops the script and QEMU and releases loop devices, mounts and disks', async () => {
    // A create that holds a loop device and a mount (no cleanup of its own) and waits.
    const dir = broken('hang-create', { create: 'l=$(losetup --find --show "$DISK_0_PATH")\nmkfs.ext4 -q "$l"\nm=$(dirname "$DISK_0_PATH")/mnt\nmkdir -p "$m"\nmount "$l" "$m"\necho mounted\nsleep 300' });
    const interrupt = async (args: string[], when: (logs: string[], text: string) => boolean) => {
      clearWork();
      const child = spawn(process.execPath, [BIN, 'test', '--work-dir', work, '--disk-size', '64M', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const deadline = Date.now() + 60_000;
      const logFiles = () => fs.readdirSync(work).flatMap((d) => (fs.existsSync(path.join(work, d, 'logs')) ? fs.readdirSync(path.join(work, d, 'logs')).map((f) => path.join(work, d, 'logs', f)) : []));
      const seen = () => when(logFiles().map((f) => path.basename(f)), logFiles().map((f) => fs.readFileSync(f, 'latin1')).join('\n'));
      while (!seen() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      expect(seen()).toBe(true);
      child.kill('SIGINT');
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      expect(code).toBe(130);
      expect(err).toMatch(/interrupted/);
      expect(resources(work, work).loops).toEqual([]);
      expect(resources(work, work).mounts).toEqual([]);
      const left = fs.readdirSync(work).flatMap((d) => fs.readdirSync(path.join(work, d)));
      expect(left.filter((f) => f.endsWith('.img'))).toEqual([]);
      return err;
    };
    await interrupt(['--os-dir', dir], (_f, text) => /mounted/.test(text));
    const hang = broken('hang-boot', { create: HANG_CREATE });
    // The console log appears when QEMU starts: interrupt 3 s later.
    const before = spawnSync('pgrep', ['-f', `qemu-system-x86_64.*${work}`], { encoding: 'utf8' }).stdout;
    expect(before).toBe('');
    let since = 0;
    await interrupt(['--os-dir', hang, '--hvparam', 'kernel_path=', '--boot-timeout', '300'], (files) => {
      if (!files.includes('console-disk0.log')) return false;
      since ||= Date.now();
      return Date.now() - since > 3000 && spawnSync('pgrep', ['-f', `qemu-system-x86_64.*${work}`], { encoding: 'utf8' }).stdout !== '';
    });
    expect(spawnSync('pgrep', ['-f', `qemu-system-x86_64.*${work}`], { encoding: 'utf8' }).stdout).toBe('');
  }, 180_000);

  describe('the debian template', () => {
    let deb: string;
    beforeAll(() => {
      deb = newDef('debian-os', 'debian');
    });

    it('passes with its defaults: no kernel of its own, the boot reported as the node kernel\'s', () => {
      clearWork();
      const t = testJson(['--os-dir', deb], 900);
      if (t.code !== 0) throw new Error(t.stderr);
      expect(t.status).toEqual({ verify: 'passed', create: 'passed', boot: 'skipped', export: 'passed', import: 'passed', grow: 'passed', 'boot-import': 'skipped', rename: 'passed', reinstall: 'passed' });
      expect(t.step('boot').detail).toMatch(/boots the node's kernel \(kernel_path=\/boot\/vmlinuz-3-kvmU\).*not meant to boot by itself/);
      expect(t.step('verify').detail).toMatch(/given values accepted, \d+ bad value\(s\) refused/);
      expect(t.step('export').detail).toMatch(/as announced$/);
      workEmpty();
    }, 900_000);

    it('passes with its own kernel (kernel_path=), gpt and a static NIC: boots twice, address and hostname configured', () => {
      clearWork();
      const t = testJson(['--os-dir', deb, '--keep', '--hvparam', 'kernel_path=', '--osparam', 'partition-style=gpt', '--network', 'name=n1,subnet=192.0.2.0/24,gateway=192.0.2.1', '--nic', 'ip=192.0.2.10,network=n1'], 1500);
      if (t.code !== 0) throw new Error(t.stderr);
      expect(t.run.steps.every((s) => s.status === 'passed')).toBe(true);
      const checks = (b: string) => Object.fromEntries(t.step(b).checks!.map((c) => [c.name, c.ok]));
      // gpt: booted under what the disk is made for, BIOS and UEFI (the import under the last).
      expect(checks('boot')).toEqual({ 'boot under BIOS': true, 'boot under UEFI': true, hostname: true, 'login prompt': true, 'static address of NIC 0': true, 'root password': true });
      // The import's disk grew after the import (as gnt-instance grow-disk): its boot filled it
      // (the template's grow-root service: gpt, partition 1 grown, its backup header moved).
      expect(checks('boot-import')).toEqual({ 'boot under UEFI': true, hostname: true, 'login prompt': true, 'static address of NIC 0': true, 'root password': true, 'clean shutdown': true, 'root fills the disk': true });
      expect(t.step('grow').detail).toMatch(/^2560 MiB → 3072 MiB/);
      // Root starts at 34 MiB (after the BIOS boot and EFI system partitions): it fills the rest.
      expect(t.step('boot-import').detail).toMatch(/root filesystem 30[0-3]\d MiB of the 3038 MiB from its start at 34 MiB to the end of the 3072 MiB disk after the boot$/);
      expect(consoleText(fs.readFileSync(t.step('boot-import').logs[0], 'latin1'))).toMatch(/ganeti-os-grow-root: growing partition 1 of \/dev\/vda/);
      // The boots overlap: the first runs while export and import do, the import's starts before it ends.
      const [boot, exp, imp, bootImport] = ['boot', 'export', 'import', 'boot-import'].map(t.step);
      const end = (s: StepJson) => s.start + s.seconds;
      expect(exp.start).toBeLessThan(end(boot));
      expect(end(imp)).toBeLessThan(end(boot));
      expect(bootImport.start).toBeLessThan(end(boot));
      expect(t.step('reinstall').start).toBeGreaterThanOrEqual(end(boot) - 0.1);
      expect(t.step('rename').start).toBeGreaterThanOrEqual(end(bootImport) - 0.1);
      expect(t.run.seconds).toBeLessThan(t.run.stepSeconds);
      expect(t.step('create').detail).toMatch(/ext4 root \(gpt\), kernel \S+, GRUB in the MBR, signed shim and GRUB on the EFI system partition: boots by itself under BIOS and UEFI \(Secure Boot: signed shim\)/);
      // The default variant is trixie (Debian 13).
      expect(consoleText(fs.readFileSync(t.step('boot').logs[0], 'latin1'))).toMatch(/^Debian GNU\/Linux 13 instance1\S* ttyS0$/m);
    }, 1_500_000);

    it("passes with the node's kernel (-kernel/-initrd, root=/dev/vda), partition-style none and DHCP", () => {
      // The "node's kernel": the one the previous case installed, taken out of its disk.
      const kept = fs.readdirSync(work).map((d) => path.join(work, d)).find((d) => fs.existsSync(path.join(d, 'disk0.img')))!;
      const disk = path.join(kept, 'disk0.img');
      const part = JSON.parse(spawnSync('sfdisk', ['--json', disk], { encoding: 'utf8' }).stdout).partitiontable.partitions[0];
      const image = `${disk}?offset=${part.start * 512}`;
      const boot = spawnSync('debugfs', ['-c', '-R', 'ls /boot', image], { encoding: 'utf8' }).stdout;
      const kname = /vmlinuz-\S+/.exec(boot)![0];
      const iname = /initrd\.img-\S+/.exec(boot)![0];
      const kernel = path.join(root, 'vmlinuz');
      const initrd = path.join(root, 'initrd.img');
      spawnSync('debugfs', ['-c', '-R', `dump /boot/${kname} ${kernel}`, image]);
      spawnSync('debugfs', ['-c', '-R', `dump /boot/${iname} ${initrd}`, image]);
      clearWork();
      const t = testJson(['--os-dir', deb, '--hvparam', `kernel_path=${kernel}`, '--hvparam', `initrd_path=${initrd}`, '--hvparam', 'root_path=/dev/vda', '--osparam', 'partition-style=none'], 1500);
      if (t.code !== 0) throw new Error(t.stderr);
      expect(t.run.steps.every((s) => s.status === 'passed')).toBe(true);
      expect(t.step('create').detail).toMatch(/ext4 root on the whole disk, no kernel, no boot loader/);
      expect(t.step('boot').detail).toContain(`boots the node's kernel ${kernel} with ${initrd}`);
      expect(Object.fromEntries(t.step('boot').checks!.map((c) => [c.name, c.ok]))).toMatchObject({ hostname: true, 'static address': null, 'root password': true });
      // No partition table: the filesystem alone grows to the grown disk.
      expect(Object.fromEntries(t.step('boot-import').checks!.map((c) => [c.name, c.ok]))).toMatchObject({ 'clean shutdown': true, 'root fills the disk': true });
      workEmpty();
    }, 1_500_000);

    if (FULL_MATRIX) {
      it('bookworm: passes with its own kernel (kernel_path=): boots twice', () => {
        clearWork();
        const t = testJson(['--os-dir', deb, '--variant', 'bookworm', '--hvparam', 'kernel_path='], 1500);
        if (t.code !== 0) throw new Error(t.stderr);
        expect(t.run.steps.every((s) => s.status === 'passed')).toBe(true);
        expect(t.step('boot').checks!.find((c) => c.name === 'login prompt')?.ok).toBe(true);
        expect(t.step('create').detail).toMatch(/kernel \S+, GRUB in the MBR: boots by itself under BIOS only/);
        workEmpty();
      }, 1_500_000);
    } else {
      it('bookworm: create with its own kernel, boot: the login prompt is found though late kernel messages land on its line, and only critical ones show', async () => {
        // A definition whose instances print an err and a crit kernel message after the prompt
        // (test/helpers/late-kernel-message.sh, a site hook), as a late driver would.
        const bw = newDef('bookworm-os', 'debian');
        const hooks = path.join(root, 'bookworm-hooks');
        fs.mkdirSync(hooks);
        fs.copyFileSync(path.join(__dirname, 'helpers', 'late-kernel-message.sh'), path.join(hooks, '50-late-kernel-message'));
        fs.chmodSync(path.join(hooks, '50-late-kernel-message'), 0o755);
        fs.appendFileSync(path.join(bw, 'defaults.conf'), `HOOKS_DIR=${hooks}\n`);
        clearWork();
        const disk = path.join(work, 'bookworm.img');
        const made = cli(['run', 'create', '--os-dir', bw, '--variant', 'bookworm', '--disk', `${disk}:2048`, '--hvparam', 'kernel_path=', '--log-dir', path.join(work, 'logs')], 900);
        if (made.code !== 0) throw new Error(made.stderr);
        const consoleLog = path.join(work, 'console-bookworm.log');
        const r = await bootUntilReady({ disks: [disk], macs: ['aa:00:00:12:34:56'], plan: { mode: 'disk', reason: 'bookworm' }, consoleLog, timeoutSeconds: 600, ready: /ganeti-os-test: a late kernel message \(crit\)/ });
        if (!r.ready) throw new Error(`${r.problem}\n${r.consoleTail}`);
        const text = fs.readFileSync(consoleLog, 'latin1');
        expect(consoleText(text)).toMatch(/Debian GNU\/Linux 12 instance1\S* ttyS0/);
        // The prompt's line carries the kernel's message; readiness (test's own matcher) finds the prompt.
        expect(consoleText(text)).toMatch(/^instance1 login: \[ *\d+\.\d+\] ganeti-os-test: a late kernel message \(crit\)$/m);
        expect(consoleReady(text)).toBe('instance1 login:');
        // The quiet console: the err message is in the kernel's log, not on the console.
        expect(consoleText(text)).not.toMatch(/a late kernel message \(err\)/);
        clearWork();
      }, 1_500_000);
    }
  });
});
