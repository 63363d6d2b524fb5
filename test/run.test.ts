/**
 * `run` executes scripts as Ganeti does: the same environment (reset), working directory,
 * closed stdin and log, compared with Ganeti's own InstanceOsAdd / RunRenameInstance output;
 * export/import through bash with EXP_SIZE_FD; failures show the log's last 20 lines.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { detachLoop, loopsBackedBy } from '../src/system/kernel';
import { def, writeCase } from './helpers/corpus';
import { cli, tempDir } from './helpers/cli';
import { instanceOsAdd, runExport, runImport, runRename } from './helpers/ganeti';
import { describeSystem } from './helpers/system';

const DUMP = `#!/bin/bash
echo "script=$0 args=$# $*"
echo "cwd=$(pwd)"
if [ -p /dev/stdin ]; then echo "stdin is a pipe"; else echo "stdin is not a pipe"; fi
if read -r line; then echo "stdin: $line"; else echo "stdin: EOF"; fi
env -0 | sort -z | tr '\\0' '\\n' | grep -v '^_=' | grep -v '^SHLVL=' | grep -v '^PWD=' | grep -v '^OLDPWD='
`;
const EXPORT = `#!/bin/bash
set -e
printf '%s\\n' "$(stat -c %s "$EXPORT_DEVICE")" >&"$EXP_SIZE_FD"
cat "$EXPORT_DEVICE"
`;
const IMPORT = `#!/bin/bash
set -e
cat > "$IMPORT_DEVICE"
`;
const FAIL = `#!/bin/sh
i=1
while [ $i -le 30 ]; do echo "line $i"; i=$((i+1)); done
printf 'tab\\there\\n'
exit 3
`;

const norm = (log: string) =>
  log
    .split('\n')
    .map((l) => l.replace(/^([A-Z0-9_]*(UUID|CTIME|MTIME))=.*/, '$1=<norm>'))
    .join('\n');

describeSystem('run executes scripts as Ganeti does', { ganeti: true }, () => {
  let root: string;
  let osDir: string;
  let failDir: string;
  let disk: string;

  beforeAll(() => {
    root = tempDir('run');
    const x = { mode: 0o755 };
    osDir = writeCase(path.join(root, 'os'), {
      name: 'dumpos',
      files: def({ create: { ...x, content: DUMP }, rename: { ...x, content: DUMP }, verify: { ...x, content: DUMP }, export: { ...x, content: EXPORT }, import: { ...x, content: IMPORT } }),
    });
    failDir = writeCase(path.join(root, 'os2'), { name: 'failos', files: def({ create: { mode: 0o755, content: FAIL } }) });
    disk = path.join(root, 'disk.img');
    fs.writeFileSync(disk, Buffer.alloc(3 * 1024 * 1024, 7));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const readLog = (dir: string) => {
    const files = fs.readdirSync(dir);
    expect(files).toHaveLength(1);
    return { name: files[0], text: fs.readFileSync(path.join(dir, files[0]), 'utf8') };
  };

  it('create: same log as InstanceOsAdd (env reset, cwd, closed stdin), log named like Ganeti', async () => {
    const gdir = path.join(root, 'glog1');
    const mdir = path.join(root, 'mlog1');
    const g = instanceOsAdd({ name: 'inst1', os: 'dumpos+minimal', os_dir: osDir, disks: [{ path: disk }], nics: [{ ip: '192.0.2.1' }] }, { reinstall: true, logdir: gdir });
    expect(g.ok).toBe(true);
    const r = await cli(root, ['run', 'create', '--os-dir', osDir, '--name', 'inst1', '--variant', 'minimal', '--disk', disk, '--nic', 'ip=192.0.2.1', '--reinstall', '--log-dir', mdir]);
    expect(r.code).toBe(0);
    const gl = readLog(gdir);
    const ml = readLog(mdir);
    expect(ml.name.replace(/\d{4}-\d\d-\d\d_\d\d_\d\d_\d\d/, 'TS')).toBe(gl.name.replace(/\d{4}-\d\d-\d\d_\d\d_\d\d_\d\d/, 'TS'));
    expect(ml.name).toMatch(/^add-dumpos\+minimal-inst1-\d{4}-\d\d-\d\d_\d\d_\d\d_\d\d\.log$/);
    expect(norm(ml.text)).toBe(norm(gl.text));
    expect(ml.text).toContain('INSTANCE_REINSTALL=1');
    expect(ml.text).toContain('stdin: EOF');
    expect(r.stderr).toContain(path.join(mdir, ml.name));
  });

  it('rename: same log as RunRenameInstance', async () => {
    const gdir = path.join(root, 'glog2');
    const mdir = path.join(root, 'mlog2');
    const g = runRename({ name: 'new1', os: 'dumpos', os_dir: osDir, disks: [{ path: disk }] }, 'old1', gdir);
    expect(g.ok).toBe(true);
    const r = await cli(root, ['run', 'rename', '--os-dir', osDir, '--name', 'new1', '--old-name', 'old1', '--disk', disk, '--no-nics', '--log-dir', mdir]);
    expect(r.code).toBe(0);
    const gl = readLog(gdir);
    const ml = readLog(mdir);
    expect(ml.name).toMatch(/^rename-dumpos-old1-new1-/);
    expect(norm(ml.text)).toBe(norm(gl.text));
    expect(ml.text).toContain('OLD_INSTANCE_NAME=old1');
  });

  it('verify: gets "parameters" and only the core environment', async () => {
    const mdir = path.join(root, 'mlog3');
    const r = await cli(root, ['run', 'verify', '--os-dir', osDir, '--osparam', 'filesystem=ext4', '--log-dir', mdir]);
    expect(r.code).toBe(0);
    const ml = readLog(mdir).text;
    expect(ml).toContain('args=1 parameters');
    const vars = ml.split('\n').filter((l) => /^[A-Z_0-9]+=/.test(l)).map((l) => l.split('=')[0]);
    expect(vars.sort()).toEqual(['DEBUG_LEVEL', 'OSP_FILESYSTEM', 'OS_API_VERSION', 'OS_NAME', 'OS_VARIANT', 'PATH']);
  });

  it('export: the stream, the size announced on EXP_SIZE_FD, as the import-export daemon runs it; import writes the disk back', async () => {
    const gout = path.join(root, 'g.stream');
    const mout = path.join(root, 'm.stream');
    const g = runExport({ name: 'e', os: 'dumpos', os_dir: osDir, disks: [{ path: disk }] }, 0, gout);
    expect(g.ok).toBe(true);
    const r = await cli(root, ['run', 'export', '--os-dir', osDir, '--name', 'e', '--disk', disk, '--output', mout, '--log-dir', path.join(root, 'mlog4'), '--json']);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(mout).equals(fs.readFileSync(gout))).toBe(true);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, bytes: 3 * 1024 * 1024, announcedBytes: Number(String(g.announced).trim()) });
    expect(r.stderr).toContain('announced 3145728 bytes');

    const target = path.join(root, 'target.img');
    const imp = await cli(root, ['run', 'import', '--os-dir', osDir, '--name', 'e', '--disk', `${target}:4`, '--input', mout, '--log-dir', path.join(root, 'mlog5')]);
    expect(imp.code).toBe(0);
    expect(fs.readFileSync(target).subarray(0, 3 * 1024 * 1024).equals(fs.readFileSync(disk))).toBe(true);
  });

  it('an import that stops reading early fails as under Ganeti (cat gets SIGPIPE, pipefail)', async () => {
    const d = writeCase(path.join(root, 'os4'), { name: 'lazyimport', files: def({ import: { mode: 0o755, content: '#!/bin/sh\nexit 0\n' } }) });
    const big = path.join(root, 'big.stream');
    fs.writeFileSync(big, Buffer.alloc(32 * 1024 * 1024));
    const g = runImport({ name: 'l', os: 'lazyimport', os_dir: d, disks: [{ path: disk }] }, 0, big);
    const r = await cli(root, ['run', 'import', '--os-dir', d, '--name', 'l', '--disk', disk, '--input', big, '--log-dir', path.join(root, 'mlog9'), '--json']);
    expect(g.ok).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`OS import script failed (exited with exit code ${g.returncode})`);
  });

  it('a failed create prints the last 20 lines of the log like Ganeti, exit 1', async () => {
    const mdir = path.join(root, 'mlog6');
    const r = await cli(root, ['run', 'create', '--os-dir', failDir, '--log-dir', mdir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('OS create script failed (exited with exit code 3), last lines in the log file:');
    expect(r.stderr).toContain('line 12\nline 13');
    expect(r.stderr).not.toContain('line 11\n');
    expect(r.stderr).toContain('tab\\there');
    const g = instanceOsAdd({ name: 'instance1.example.com', os: 'failos', os_dir: failDir, disks: [] }, { logdir: path.join(root, 'glog6') });
    expect(g.ok).toBe(false);
    expect(r.stderr).toContain(`ganeti-os: error: ${g.error}`);
  });

  it('a create without #!: Ganeti (Python) gets ENOEXEC where a shell would run it; so does run', async () => {
    const d = writeCase(path.join(root, 'os3'), { name: 'noshebang', files: def({ create: { mode: 0o755, content: 'echo hi\n' } }) });
    const g = instanceOsAdd({ name: 'n', os: 'noshebang', os_dir: d, disks: [] }, { logdir: path.join(root, 'glog8') });
    expect(g.ok).toBe(false);
    const r = await cli(root, ['run', 'create', '--os-dir', d, '--name', 'n', '--log-dir', path.join(root, 'mlog8')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(String(g.error));
  });

  it('missing disk with a size is created sparse; without a size it is an error and nothing is created', async () => {
    const p = path.join(root, 'new.img');
    const bad = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', p, '--log-dir', path.join(root, 'mlog7')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/does not exist; give a size/);
    expect(fs.existsSync(p)).toBe(false);
    expect(fs.existsSync(path.join(root, 'mlog7'))).toBe(false);
    const env = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', `${p}:1001M`, '--disk', `${p}x:1001`, '--print-env']);
    expect(env.code).toBe(0);
    expect(JSON.parse(env.stdout).DISK_0_SIZE).toBe('1004'); // utils.ParseUnit rounds up to 4 MiB
    expect(JSON.parse(env.stdout).DISK_1_SIZE).toBe('1001'); // a bare MiB number is taken as is
    expect(fs.existsSync(p)).toBe(false);
    const ok = await cli(root, ['run', 'create', '--os-dir', osDir, '--disk', `${p}:2G`, '--log-dir', path.join(root, 'mlog7')]);
    expect(ok.code).toBe(0);
    const st = fs.statSync(p);
    expect(st.size).toBe(2048 * 1024 * 1024);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024);
  });

  it.each([
    [['run', 'nope'], 2, /unknown script 'nope'/],
    [['run', 'create', '--os-dir', '/nonexistent/x'], 1, /does not exist/],
    [['run', 'create', '--nic', 'mac'], 2, /malformed --nic/],
    [['run', 'create', '--nic', 'speed=1'], 2, /unknown key 'speed'/],
    [['run', 'create', '--nic', 'mode=nat'], 2, /mode must be one of/],
    [['run', 'create', '--osparam', '=x'], 2, /malformed --osparam/],
    [['run', 'create', '--osparam', 'bogus=1'], 1, /The following parameters are not supported by the OS dumpos: bogus/],
    [['run', 'create', '--hvparam', 'nope=1'], 2, /Unknown parameter 'nope'/],
    [['run', 'create', '--hvparam', 'acpi=yes'], 2, /'acpi' \(value yes\) is not a valid boolean/],
    [['run', 'create', '--beparam', 'vcpus=two'], 2, /not a valid integer/],
    [['run', 'create', '--hypervisor', 'vmware'], 2, /unknown hypervisor/],
    [['run', 'create', '--variant', 'nope'], 1, /OS 'dumpos' does not support variant 'nope'/],
    [['run', 'export'], 2, /needs a disk/],
    [['run', 'create', '--disk-template', 'drbd'], 2, /unknown disk template/],
  ])('%j fails clearly', async (args, code, re) => {
    const a = [...(args as string[])];
    if (!a.includes('--os-dir')) a.push('--os-dir', osDir);
    const r = await cli(root, a);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(re as RegExp);
  });
});

describeSystem('run reports what a script warned about and what it left on a disk', { root: true, ganeti: true, commands: ['losetup'] }, () => {
  let root: string;
  afterAll(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("shows the script's warnings once each, and a loop device it left attached to disk 0", async () => {
    root = tempDir('run-left');
    // A careless create: warns (one warning twice) and leaves its loop device attached.
    const LEAKY = `#!/bin/bash
echo "create: warning: the mirror is slow" >&2
echo "create: warning: the mirror is slow" >&2
echo "create: warning: building on disk" >&2
echo "create: not a warning" >&2
losetup --find --show -- "$DISK_0_PATH"
`;
    const dir = writeCase(path.join(root, 'os'), { name: 'leaky', files: def({ create: { mode: 0o755, content: LEAKY } }) });
    const disk = path.join(root, 'disk.img');
    fs.writeFileSync(disk, Buffer.alloc(4 * 1024 * 1024));
    try {
      const r = await cli(root, ['run', 'create', '--os-dir', dir, '--disk', disk, '--log-dir', path.join(root, 'log')]);
      expect(r.code).toBe(0);
      expect(r.stderr.match(/create said: the mirror is slow/g)).toHaveLength(1);
      expect(r.stderr).toMatch(/create said: building on disk/);
      expect(r.stderr).not.toMatch(/not a warning/);
      expect(r.stderr).toMatch(new RegExp(`create left disk 0 \\(${disk.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\): /dev/loop\\d+ still attached to it`));
    } finally {
      for (const l of loopsBackedBy(disk)) detachLoop(l.name);
    }
  });
});
