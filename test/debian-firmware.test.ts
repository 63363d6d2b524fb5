/**
 * Issue 24 items 1-3: one gpt disk of the debian template boots under BIOS, UEFI and UEFI with
 * Secure Boot enforced (OVMF with Microsoft's keys: Debian's signed shim, GRUB and kernel), as
 * `ganeti-os test --firmware` boots it under QEMU (-accel tcg, -snapshot); the export/import
 * makes the EFI system partition anew, so the imported instance boots with Secure Boot too. An
 * msdos disk stays BIOS-only: create and test say so, and --firmware uefi on it fails naming
 * what is missing. The gpt layouts create writes (with the ESP, and the old two-partition one of
 * every gpt disk made before) are both "ours" to export block by block; others are not.
 *
 * Time: the layouts take a second; the boots
 * four TCG boots of ~1-3.5 min each plus ~1.5 min of scripts (a first run builds the UEFI base
 * system, ~5 min); the msdos case ~2 min.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers/cli';
import { describeSystem, FULL_MATRIX } from './helpers/system';
import { testCli } from './helpers/test-run';
import { consoleText } from '../src/boot/console';

const DISK_SH = path.join(__dirname, '..', 'templates', 'debian', 'lib', 'debian-disk.sh');

/** deb_partition / deb_locate_root / deb_layout_is_ours on a sparse file: "ours" or the reason. */
function layoutVerdict(file: string, table: string): { ours: string; esp: string; root: string } {
  const script = `
gos_die() { echo "$*" >&2; exit 1; }
gos_disk_size() { stat -c %s -- "$1"; }
. "$1"
disk=$2
case $3 in
  new) deb_partition "$disk" gpt esp ;;
  old) deb_partition "$disk" gpt ;;
  *) printf '%s' "$3" | sfdisk --quiet --no-reread --no-tell-kernel "$disk" >/dev/null 2>&1 || exit 3 ;;
esac
deb_locate_root "$disk"
if deb_layout_is_ours "$disk"; then echo ours; else echo "$DEB_LAYOUT_WHY"; fi
echo "$DEB_ESP_OFFSET"
echo "$DEB_ROOT_OFFSET"`;
  const r = spawnSync('bash', ['-c', script, 'x', DISK_SH, file, table], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  const [ours, esp, root] = r.stdout.split('\n');
  return { ours, esp, root };
}

describeSystem('debian template: gpt layouts with and without the EFI system partition', { commands: ['sfdisk', 'partx', 'blkid', 'wipefs'] }, () => {
  let dir: string;
  beforeAll(() => (dir = tempDir('layout')));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const disk = (n: string) => {
    const f = path.join(dir, n);
    fs.writeFileSync(f, '');
    fs.truncateSync(f, 256 * 1024 * 1024);
    return f;
  };

  it('new creates: ESP at 2-34 MiB, root from 34 MiB; the old two-partition gpt layout is still ours; moved or extra partitions are not', () => {
    expect(layoutVerdict(disk('new.img'), 'new')).toEqual({ ours: 'ours', esp: String(2 * 1048576), root: String(34 * 1048576) });
    expect(layoutVerdict(disk('old.img'), 'old')).toEqual({ ours: 'ours', esp: '', root: String(2 * 1048576) });
    // The old root start with an ESP: not a layout create writes.
    const mixed = layoutVerdict(disk('mixed.img'), 'label: gpt\n1 : start=69632, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n2 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\n3 : start=4096, size=32768, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n');
    expect(mixed.ours).toMatch(/partition 3 \(4096\+32768, type c12a7328-f81f-11d2-ba4b-00a0c93ec93b\) is not the EFI system partition; partition 1 starts at sector 69632, not 4096$/);
    const rootMoved = layoutVerdict(disk('moved.img'), 'label: gpt\n1 : start=4096, size=100000, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n2 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\n3 : start=200000, size=65536, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n');
    expect(rootMoved.ours).toMatch(/partition 3 \(200000\+65536.*is not the EFI system partition/i);
    const four = layoutVerdict(disk('four.img'), 'label: gpt\n1 : start=69632, size=100000, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n2 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\n3 : start=4096, size=65536, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n4 : start=200000, size=20000\n');
    expect(four.ours).toMatch(/partition 4 \(9 MiB at sector 200000\)/);
  });
});

const NEEDS = ['qemu-system-x86_64', 'debugfs', 'mke2fs', 'sfdisk', 'blkid', 'losetup', 'mmdebstrap', 'partx', 'mkfs.vfat', 'mcopy', 'mtype'];

describeSystem('ganeti-os test --firmware: a gpt debian instance boots under BIOS, UEFI and Secure Boot', { root: true, commands: NEEDS, files: ['/usr/share/OVMF/OVMF_CODE_4M.ms.fd', '/usr/share/OVMF/OVMF_VARS_4M.ms.fd'] }, () => {
  let root: string;
  let work: string;
  let deb: string;
  beforeAll(() => {
    root = tempDir('firmware');
    work = path.join(root, 'work');
    fs.mkdirSync(work);
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  // A run past its time gets SIGINT, as from Ctrl-C (test stops its scripts and QEMU on it).
  const { cli, testJson, clearWork } = testCli(() => ({ root, work }), { killSignal: 'SIGINT' });

  beforeAll(() => {
    const r = cli(['new', 'debian-os', '--template', 'debian', '--yes'], 60);
    expect(r.code).toBe(0);
    deb = path.join(root, 'debian-os');
  });

  it('an unknown firmware is a usage error (exit 2), before anything runs', () => {
    const r = cli(['test', '--os-dir', deb, '--work-dir', work, '--firmware', 'efi'], 60);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--firmware 'efi': use bios, uefi, secureboot/);
    expect(fs.readdirSync(work)).toEqual([]);
  });

  // CI boots the created disk under Secure Boot only: test-command's gpt case boots it under BIOS
  // and UEFI in CI. The matrix (npm run test:matrix) boots all three here, one after another.
  const firmwares = FULL_MATRIX ? ['bios', 'uefi', 'secureboot'] : ['secureboot'];
  const LABEL: Record<string, string> = { bios: 'BIOS', uefi: 'UEFI', secureboot: 'UEFI with Secure Boot' };

  it(`gpt: create installs both boot paths; boots under ${firmwares.map((f) => LABEL[f]).join(', ')}; the import boots with Secure Boot`, () => {
    clearWork();
    const t = testJson(['--os-dir', deb, '--keep', '--hvparam', 'kernel_path=', '--osparam', 'partition-style=gpt', ...firmwares.flatMap((f) => ['--firmware', f])], 2400);
    if (t.code !== 0) throw new Error(`${t.stdout}\n${t.stderr}`);
    // Boot-to-login times, for the record (TCG: they vary with the machine's load).
    console.log(`boot: ${t.step('boot').detail}; boot-import: ${t.step('boot-import').detail}`);
    expect(t.run.steps.every((s) => s.status === 'passed')).toBe(true);
    expect(t.step('create').detail).toMatch(/GRUB in the MBR, signed shim and GRUB on the EFI system partition: boots by itself under BIOS and UEFI \(Secure Boot: signed shim\)$/);
    const log = fs.readFileSync(t.step('create').logs[0], 'utf8');
    expect(log).toMatch(/disk 0 boots under BIOS and UEFI \(GRUB in the BIOS boot partition; signed shim and GRUB at \/EFI\/BOOT\/BOOTX64\.EFI on the ESP, Secure Boot ready\)/);
    const boots = Object.fromEntries(t.step('boot').checks!.filter((c) => c.name.startsWith('boot under')).map((c) => [c.name, c.ok]));
    expect(boots).toEqual(Object.fromEntries(firmwares.map((f) => [`boot under ${LABEL[f]}`, true])));
    expect(t.step('boot').detail).toMatch(new RegExp(`^ready under ${firmwares.map((f) => `${LABEL[f]} after \\d+ s`).join(', ')}$`));
    // The import's disk grew before its boot (as gnt-instance grow-disk): the boot filled it.
    expect(t.step('boot-import').detail).toMatch(/^ready under UEFI with Secure Boot after \d+ s; root filesystem \d+ MiB of the \d+ MiB from its start at 34 MiB to the end of the \d+ MiB disk after the boot$/);
    for (const c of t.step('boot').checks!) expect(c.ok).not.toBe(false);
    // The firmware really was what it says: the kernel's own words on each console.
    const consoles = (step: string) => t.step(step).logs.filter((l) => /console-/.test(l)).map((l) => consoleText(fs.readFileSync(l, 'latin1')));
    const seen = consoles('boot');
    expect(seen).toHaveLength(firmwares.length);
    firmwares.forEach((f, i) => {
      if (f === 'bios') expect(seen[i]).not.toMatch(/EFI v\d/);
      if (f === 'uefi') {
        expect(seen[i]).toMatch(/efi: EFI v\d/);
        expect(seen[i]).toMatch(/secureboot: Secure boot disabled/);
      }
      if (f === 'secureboot') expect(seen[i]).toMatch(/secureboot: Secure boot enabled/);
    });
    expect(consoles('boot-import')[0]).toMatch(/secureboot: Secure boot enabled/);
    // Each boot under UEFI had its own copy of the variable store.
    const stores = [...firmwares.filter((f) => f !== 'bios').map((f) => `ovmf-vars-disk0-${f}.fd`), 'ovmf-vars-import-disk0-secureboot.fd'].sort();
    expect(fs.readdirSync(path.dirname(t.step('boot').logs[0])).filter((n) => n.startsWith('ovmf-vars-')).sort()).toEqual(stores);
    clearWork();
  }, 2_400_000);

  it('msdos stays BIOS-only: create says so, and --firmware uefi fails naming the missing EFI system partition, with nothing left running', () => {
    clearWork();
    const t = testJson(['--os-dir', deb, '--hvparam', 'kernel_path=', '--firmware', 'uefi'], 1200);
    expect(t.code).toBe(1);
    expect(t.step('create').detail).toMatch(/GRUB in the MBR: boots by itself under BIOS only$/);
    expect(t.step('boot').status).toBe('failed');
    expect(t.step('boot').detail).toMatch(/disk \S+disk0\.img is not made to boot under UEFI: it has an msdos partition table and no EFI system partition \(BIOS only: partition-style gpt gives one\)/);
    expect(t.step('boot-import').detail).toMatch(/is not made to boot under UEFI: it has an msdos partition table/);
    expect(t.step('export').status).toBe('passed');
    expect(spawnSync('pgrep', ['-f', `qemu-system-x86_64.*${work}`]).status).toBe(1);
    // And create refuses firmware=uefi on msdos outright (verify's check).
    const v = testJson(['--os-dir', deb, '--hvparam', 'kernel_path=', '--osparam', 'firmware=uefi'], 300);
    expect(v.code).toBe(1);
    expect(v.step('verify').status).toBe('failed');
    clearWork();
  }, 1_500_000);
});
