/**
 * `ganeti-os pack`: the .deb of a definition. Built, inspected with dpkg-deb, checked by lintian,
 * installed, upgraded and purged with dpkg in a scratch root (`dpkg --root`: the host's own
 * package database and /etc stay untouched), and read by Ganeti's own DiagnoseOS there.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runInProcess, tempDir, REPO } from './helpers/cli';
import { ganeti } from './helpers/ganeti';
import { describeSystem } from './helpers/system';
import { compareVersions } from '../src/package/debian';

jest.setTimeout(120000);

const MAINTAINER = 'Site Admin <admin@example.org>';
let work: string;
beforeEach(() => {
  work = tempDir('packdeb');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

const sh = (cmd: string, args: string[], opts: { cwd?: string; input?: string; env?: Record<string, string> } = {}) =>
  spawnSync(cmd, args, { cwd: opts.cwd ?? work, input: opts.input, encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', ...opts.env } });

async function cli(args: string[], env: Record<string, string> = {}) {
  return runInProcess(args, { cwd: work, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env } });
}

async function newDef(name: string, template = 'debian', extra: string[] = []) {
  const r = await cli(['new', name, '--template', template, '--yes', ...extra]);
  expect(r.code).toBe(0);
  return path.join(work, name);
}

async function pack(dir: string, extra: string[] = [], env: Record<string, string> = {}) {
  return cli(['pack', '--os-dir', dir, '--maintainer', MAINTAINER, ...extra], env);
}

const field = (deb: string, name: string) => sh('dpkg-deb', ['-f', deb, name]).stdout.trim();

/** The relations a template's manifest declares, along its base chain (read here independently). */
function manifestRelations(template: string): { depends: string[]; suggests: string[] } {
  const m = JSON.parse(fs.readFileSync(path.join(REPO, 'templates', template, 'template.json'), 'utf8'));
  const out = { depends: [] as string[], suggests: [] as string[] };
  for (const b of m.base ?? []) {
    const r = manifestRelations(b);
    out.depends.push(...r.depends);
    out.suggests.push(...r.suggests);
  }
  out.depends.push(...(m.package?.depends ?? []));
  out.suggests.push(...(m.package?.suggests ?? []));
  return out;
}

describeSystem('pack: the .deb', { commands: ['dpkg-deb', 'dpkg'] }, () => {
  it('is reproducible, carries the definition, conffiles, docs and control fields derived from the template', async () => {
    const dir = await newDef('debian-os');
    const r1 = await pack(dir, ['--output', 'a'], { SOURCE_DATE_EPOCH: '1700000000' });
    expect(r1.stderr).toBe(`Packed new version 1 of ganeti-os-debian-os: ${fs.statSync(path.join(work, 'a', 'ganeti-os-debian-os_1_all.deb')).size} bytes, /usr/share/ganeti/os/debian-os, 3 conffiles in /etc/ganeti/debian-os/; Depends: ${manifestRelations('debian').depends.join(', ')}\n`);
    expect(r1.code).toBe(0);
    const deb = r1.stdout.trim();
    expect(deb).toBe(path.join(work, 'a', 'ganeti-os-debian-os_1_all.deb'));
    // Byte-identical on a rebuild, at another time, in another directory.
    const r2 = await pack(dir, ['--output', 'b'], { SOURCE_DATE_EPOCH: '1800000000' });
    expect(r2.code).toBe(0);
    expect(r2.stderr).toMatch(/^Rebuilt version 1 /);
    expect(fs.readFileSync(r2.stdout.trim()).equals(fs.readFileSync(deb))).toBe(true);

    expect(field(deb, 'Package')).toBe('ganeti-os-debian-os');
    expect(field(deb, 'Version')).toBe('1');
    expect(field(deb, 'Architecture')).toBe('all');
    expect(field(deb, 'Section')).toBe('admin');
    expect(field(deb, 'Enhances')).toBe('ganeti');
    expect(field(deb, 'Maintainer')).toBe(MAINTAINER);
    const rel = manifestRelations('debian');
    expect(field(deb, 'Depends')).toBe(rel.depends.join(', '));
    expect(field(deb, 'Suggests')).toBe(rel.suggests.join(', '));
    expect(field(deb, 'Depends')).not.toMatch(/ganeti/);

    // Contents: modes, owners, every mtime the release date.
    const listing = sh('dpkg-deb', ['-c', deb]).stdout.trim().split('\n');
    const entries = new Map(
      listing.map((l) => {
        const [perm, owner, size, date, time, name] = l.split(/\s+/);
        return [name.replace(/^\.\//, '/').replace(/\/$/, ''), { perm, owner, size: Number(size), stamp: `${date} ${time}` }] as const;
      }),
    );
    for (const e of entries.values()) {
      expect(e.owner).toBe('root/root');
      expect(e.stamp).toBe('2023-11-14 22:13');
    }
    const os = '/usr/share/ganeti/os/debian-os';
    for (const s of ['create', 'import', 'export', 'rename', 'verify']) expect(entries.get(`${os}/${s}`)?.perm).toBe('-rwxr-xr-x');
    for (const f of ['ganeti_api_version', 'variants.list', 'parameters.list', 'lib/runtime.sh', 'defaults.conf', 'variants/bookworm.conf', '.ganeti-os.json']) {
      expect(entries.get(`${os}/${f}`)?.perm).toBe('-rw-r--r--');
    }
    expect(entries.has(`${os}/README.md`)).toBe(false);
    expect(entries.has(`${os}/.ganeti-os-package.json`)).toBe(false);
    for (const f of ['README.md', 'DEBIAN.md', 'copyright', 'changelog.gz']) expect(entries.has(`/usr/share/doc/ganeti-os-debian-os/${f}`)).toBe(true);
    const conffiles = ['/etc/ganeti/debian-os/defaults.conf', '/etc/ganeti/debian-os/variants/bookworm.conf', '/etc/ganeti/debian-os/variants/trixie.conf'];
    for (const c of conffiles) expect(entries.get(c)?.perm).toBe('-rw-r--r--');
    // Installed-Size as dpkg-gencontrol computes it: KiB per file rounded up, 1 per directory.
    let kib = 0;
    for (const e of entries.values()) kib += e.perm.startsWith('d') ? 1 : Math.ceil(e.size / 1024);
    expect(Number(field(deb, 'Installed-Size'))).toBe(kib - 1 /* "./" itself */);

    // Control members: conffiles, and md5sums that match the files (conffiles left out, as dh_md5sums does).
    const ctl = path.join(work, 'ctl');
    expect(sh('dpkg-deb', ['-e', deb, ctl]).status).toBe(0);
    expect(fs.readFileSync(path.join(ctl, 'conffiles'), 'utf8')).toBe(conffiles.join('\n') + '\n');
    const data = path.join(work, 'data');
    expect(sh('dpkg-deb', ['-x', deb, data]).status).toBe(0);
    const sums = fs.readFileSync(path.join(ctl, 'md5sums'), 'utf8').trim().split('\n');
    const files = [...entries.entries()].filter(([, e]) => e.perm.startsWith('-')).map(([n]) => n.slice(1));
    expect(sums.map((l) => l.split('  ')[1]).sort()).toEqual(files.filter((f) => !conffiles.includes('/' + f)).sort());
    for (const l of sums) {
      const [sum, f] = l.split('  ');
      expect(crypto.createHash('md5').update(fs.readFileSync(path.join(data, f))).digest('hex')).toBe(sum);
    }
    // The shipped definition is the source definition, file for file.
    for (const f of ['create', 'lib/steps.sh', 'variants.list', 'defaults.conf']) {
      expect(fs.readFileSync(path.join(data, os, f), 'utf8')).toBe(fs.readFileSync(path.join(dir, f), 'utf8'));
      if (f === 'defaults.conf') expect(fs.readFileSync(path.join(data, 'etc/ganeti/debian-os', f), 'utf8')).toBe(fs.readFileSync(path.join(dir, f), 'utf8'));
    }
    const changelog = sh('sh', ['-c', `zcat ${path.join(data, 'usr/share/doc/ganeti-os-debian-os/changelog.gz')}`]).stdout;
    expect(changelog).toMatch(/^ganeti-os-debian-os \(1\) unstable; urgency=medium\n/);
    expect(changelog).toContain(` -- ${MAINTAINER}  Tue, 14 Nov 2023 22:13:20 +0000\n`);
  });

  it('takes its version from the definition: a changed definition needs a higher version', async () => {
    const dir = await newDef('vos', 'blank');
    expect((await pack(dir)).code).toBe(0);
    const record = path.join(dir, '.ganeti-os-package.json');
    const before = fs.readFileSync(record, 'utf8');
    fs.appendFileSync(path.join(dir, 'lib', 'steps.sh'), '# a local change\n');
    const same = await pack(dir);
    expect(same.code).toBe(1);
    expect(same.stderr).toContain('changed since version 1 was packed');
    expect(same.stderr).toContain('ganeti-os pack --version 2');
    expect(same.stderr).toContain('Changed: lib/steps.sh.');
    for (const v of ['1', '0.9', '1~rc1']) {
      const r = await pack(dir, ['--version', v]);
      expect(r.code).toBe(1);
    }
    expect(fs.readFileSync(record, 'utf8')).toBe(before);
    expect(fs.readdirSync(work).filter((f) => f.endsWith('.deb'))).toEqual(['ganeti-os-vos_1_all.deb']);
    const bad = await pack(dir, ['--version', '2-1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("'2-1' is not a version");
    const ok = await pack(dir, ['--version', '1.1']);
    expect(ok.code).toBe(0);
    expect(field(ok.stdout.trim(), 'Version')).toBe('1.1');
    // Unchanged: the same version again, also when named.
    expect((await pack(dir)).stdout.trim()).toBe(ok.stdout.trim());
    const json = await pack(dir, ['--version', '1.1', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ deb: ok.stdout.trim(), package: 'ganeti-os-vos', version: '1.1', newRelease: false, osPath: '/usr/share/ganeti/os/vos' });
    // The maintainer is part of the package: another one is another version too.
    const other = await cli(['pack', '--os-dir', dir, '--maintainer', 'Other Admin <other@example.org>']);
    expect(other.code).toBe(1);
    const changelog = sh('sh', ['-c', `dpkg-deb --fsys-tarfile ${ok.stdout.trim()} | tar -xO ./usr/share/doc/ganeti-os-vos/changelog.gz | zcat`]).stdout;
    expect(changelog.match(/^ganeti-os-vos \(([^)]+)\)/gm)).toEqual(['ganeti-os-vos (1.1)', 'ganeti-os-vos (1)']);
    expect(changelog).toContain('* Changed: lib/steps.sh.');
  });

  it('without a maintainer, takes the user and host names as dh_make does, with a note; later versions keep it', async () => {
    const dir = await newDef('fallback', 'blank');
    const first = await cli(['pack', '--os-dir', dir]);
    expect(first.code).toBe(0);
    const login = os.userInfo().username;
    const maintainer = field(first.stdout.trim(), 'Maintainer');
    expect(maintainer).toMatch(new RegExp(`^[^<]+ <${login}@[^>]+>$`));
    expect(first.stderr).toContain(`note: Maintainer: ${maintainer}, your user and host names, as dh_make takes them`);
    fs.appendFileSync(path.join(dir, 'defaults.conf'), '# changed\n');
    const second = await cli(['pack', '--os-dir', dir, '--version', '2']);
    expect(second.code).toBe(0);
    expect(field(second.stdout.trim(), 'Maintainer')).toBe(maintainer);
    expect(second.stderr).not.toContain('note: Maintainer');
    // DEBFULLNAME and DEBEMAIL, as for Debian's other tools; an address that is none is refused.
    const dir2 = await newDef('fromenv', 'blank');
    const env = await cli(['pack', '--os-dir', dir2], { DEBFULLNAME: 'Site Admin', DEBEMAIL: 'admin@example.org' });
    expect(field(env.stdout.trim(), 'Maintainer')).toBe('Site Admin <admin@example.org>');
    const bad = await cli(['pack', '--os-dir', dir2, '--output', 'x'], { DEBEMAIL: 'nobody' });
    expect(bad.code).toBe(0); // the first release's maintainer is kept: DEBEMAIL is not read again
    const dir3 = await newDef('badenv', 'blank');
    const refused = await cli(['pack', '--os-dir', dir3], { DEBEMAIL: 'nobody' });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/DEBEMAIL 'nobody' is not a mail address/);
  });

  it('refuses a definition Ganeti rejects, merge-conflict markers, links out of it and a bad maintainer', async () => {
    const dir = await newDef('bad', 'blank');
    fs.rmSync(path.join(dir, 'rename'));
    const invalid = await pack(dir);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/is not a valid OS definition: .*rename/);
    const dir2 = await newDef('conflicted', 'blank');
    fs.appendFileSync(path.join(dir2, 'defaults.conf'), '<<<<<<< ours\nA=1\n=======\nA=2\n>>>>>>> theirs\n');
    const conflict = await pack(dir2);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain('unresolved merge conflicts');
    expect(conflict.stderr).toMatch(/defaults\.conf:\d+: <<<<<<< ours/);
    expect(conflict.stderr).toMatch(/defaults\.conf:\d+: =======/);
    fs.writeFileSync(path.join(dir2, 'defaults.conf'), '# fine\n');
    fs.symlinkSync('/etc/passwd', path.join(dir2, 'lib', 'outside'));
    const link = await pack(dir2);
    expect(link.code).toBe(1);
    expect(link.stderr).toContain('is a link out of the definition');
    fs.rmSync(path.join(dir2, 'lib', 'outside'));
    const noMail = await cli(['pack', '--os-dir', dir2, '--maintainer', 'root@localhost']);
    expect(noMail.code).toBe(2);
    expect(fs.readdirSync(work).filter((f) => f.endsWith('.deb'))).toEqual([]);
    expect(fs.existsSync(path.join(dir2, '.ganeti-os-package.json'))).toBe(false);
  });
});

describeSystem('pack: conffiles where the recorded runtime reads them', { commands: ['dpkg-deb'] }, () => {
  const conffiles = (deb: string) => {
    const ctl = path.join(work, 'ctl');
    fs.rmSync(ctl, { recursive: true, force: true });
    expect(sh('dpkg-deb', ['-e', deb, ctl]).status).toBe(0);
    return fs.readFileSync(path.join(ctl, 'conffiles'), 'utf8').trim().split('\n');
  };
  it('a record without the runtime version (an older ganeti-os) packs only the variants as conffiles, with a warning; after upgrade defaults.conf too', async () => {
    const dir = path.join(work, 'blankos');
    fs.cpSync(path.join(REPO, 'test', 'fixtures', 'upgrade', 'blank-maint', 'blankos'), dir, { recursive: true });
    const r = await pack(dir);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("warning: defaults.conf: packaged in /usr/share/ganeti/os/blankos only, not as conffiles: its record (.ganeti-os.json) does not say which configuration its runtime reads (written before ganeti-os recorded it; 'ganeti-os upgrade' records it)");
    // That runtime reads /etc/ganeti/<os>/variants/<variant>.conf, not /etc/ganeti/<os>/defaults.conf.
    expect(conffiles(r.stdout.trim())).toEqual(['/etc/ganeti/blankos/variants/default.conf', '/etc/ganeti/blankos/variants/extra.conf']);
    expect((await cli(['upgrade', '--os-dir', dir])).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, '.ganeti-os.json'), 'utf8')).runtimeVersion).toBe(2);
    const after = await pack(dir, ['--version', '2']);
    expect(after.code).toBe(0);
    expect(after.stderr).not.toMatch(/not as conffiles/);
    expect(conffiles(after.stdout.trim())).toEqual(['/etc/ganeti/blankos/defaults.conf', '/etc/ganeti/blankos/variants/default.conf', '/etc/ganeti/blankos/variants/extra.conf']);
  });
});

describeSystem('pack: ganeti-os working files', { commands: ['dpkg-deb'] }, () => {
  it('leaves out the writer\'s and upgrade\'s hidden files (naming them) and refuses a new version upgrade left beside a file', async () => {
    const dir = await newDef('wos', 'blank');
    const hidden = ['.ganeti-os.lock', '.ganeti-os.lock.break', '.ganeti-os.journal.tmp', 'lib/.steps.sh.ganeti-os-new-1', '.create.ganeti-os-old-1', '.ganeti-os/backups/2024-01-01T00-00-00-000Z/create'];
    for (const h of hidden) {
      fs.mkdirSync(path.dirname(path.join(dir, h)), { recursive: true });
      fs.writeFileSync(path.join(dir, h), 'working file\n');
    }
    const r = await pack(dir);
    expect([r.code, r.stderr]).toEqual([0, expect.stringMatching(/left out ganeti-os's own working files: .*\.ganeti-os\b/)]);
    const deb = fs.readdirSync(work).find((f) => f.endsWith('.deb'))!;
    const listed = sh('dpkg-deb', ['-c', path.join(work, deb)]).stdout;
    expect(listed).toMatch(/\.ganeti-os\.json/);
    expect(listed).not.toMatch(/ganeti-os\.(lock|journal)|ganeti-os-(new|old)|\.ganeti-os\//);
    // A new version beside an edited file (what `upgrade` leaves for the admin) is unfinished work.
    fs.writeFileSync(path.join(dir, 'README.md.ganeti-os-new'), 'new README\n');
    const beside = await pack(dir, ['--version', '2']);
    expect(beside.code).toBe(1);
    expect(beside.stderr).toMatch(/README\.md\.ganeti-os-new: a ganeti-os change is not finished/);
  });
});

describeSystem('pack: Debian version order', { commands: ['dpkg'] }, () => {
  it('orders versions exactly as dpkg --compare-versions does', () => {
    const vs = ['1', '1.0', '1.00', '1.9', '1.10', '1~rc1', '1~~', '1~', '1+a', '1a', '2', '1:0', '0:1', '2.3+site2', '2.3+site10', '1-1~'];
    // One shell for all pairs: "a b 0|1" per line, 0 when dpkg says a < b.
    const script = 'for a in "$@"; do for b in "$@"; do dpkg --compare-versions "$a" lt "$b"; echo "$a $b $?"; done; done';
    const lines = sh('bash', ['-c', script, 'bash', ...vs]).stdout.trim().split('\n');
    expect(lines).toHaveLength(vs.length ** 2);
    const seen = lines.filter((l) => {
      const [a, b, rc] = l.split(' ');
      return (rc === '0') !== compareVersions(a, b) < 0;
    });
    expect(seen).toEqual([]);
  });
});

describeSystem('pack: lintian', { commands: ['dpkg-deb', 'lintian'] }, () => {
  it('lintian --pedantic finds nothing, not even info or experimental tags', async () => {
    const dir = await newDef('debian-os');
    await cli(['add-variant', 'noble', '--os-dir', dir, '--set', 'SUITE=noble']);
    const r = await pack(dir, ['--version', '3.1+site2']);
    expect(r.code).toBe(0);
    // lintian leaves an mldbm-elf-* file in its TMPDIR: the case's own directory, removed after it.
    const l = sh('lintian', ['--pedantic', '-I', '-E', '--tag-display-limit', '0', r.stdout.trim()], { env: { TMPDIR: work } });
    expect(l.stdout).toBe('');
    expect(l.status).toBe(0);
  });
});

/** A scratch dpkg root: its own database, holding stubs of the packages our Depends name. */
function scratchRoot(depends: string[]): string {
  const root = path.join(work, 'root');
  for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers']) fs.mkdirSync(path.join(root, d), { recursive: true });
  const stubs = depends.map((d) => d.split('|')[0].trim());
  fs.writeFileSync(
    path.join(root, 'var/lib/dpkg/status'),
    stubs.map((p) => `Package: ${p}\nStatus: install ok installed\nPriority: optional\nSection: admin\nMaintainer: Stub <stub@example.org>\nArchitecture: all\nVersion: 99\nDescription: stub\n`).join('\n'),
  );
  for (const p of stubs) fs.writeFileSync(path.join(root, 'var/lib/dpkg/info', `${p}.list`), '');
  fs.writeFileSync(path.join(root, 'var/lib/dpkg/available'), '');
  return root;
}

const dpkg = (root: string, args: string[]) => sh('dpkg', [`--root=${root}`, '--force-confdef', '--force-confold', ...args]);

describeSystem('pack: dpkg installs, upgrades and purges it', { root: true, ganeti: true, commands: ['dpkg-deb', 'dpkg'] }, () => {
  it('installs a definition Ganeti reads as the source; an upgrade keeps an edited conffile and brings the new variant; purge leaves nothing', async () => {
    const dir = await newDef('pkgos', 'blank', ['--variant', 'alpha', '--param', 'size=Root size']);
    fs.appendFileSync(path.join(dir, 'defaults.conf'), 'SETTING=shipped\n');
    const v1 = await pack(dir);
    expect(v1.code).toBe(0);
    const root = scratchRoot(manifestRelations('blank').depends);
    const inst = dpkg(root, ['-i', v1.stdout.trim()]);
    expect(inst.stderr).toBe('');
    expect(inst.status).toBe(0);
    const osDir = path.join(root, 'usr/share/ganeti/os/pkgos');
    const etc = path.join(root, 'etc');

    // Ganeti's own DiagnoseOS on the installed search directory: valid, as the source.
    const diag = (d: string) => ganeti({ action: 'diagnose', dirs: [d] }) as unknown as { result: unknown[][] };
    const installed = diag(path.dirname(osDir)).result;
    expect(installed).toHaveLength(1);
    const source = diag(work).result.find((r) => r[0] === 'pkgos')!;
    expect(installed[0][0]).toBe('pkgos');
    expect(installed[0][2]).toBe(true); // status
    expect(installed[0].slice(3)).toEqual(source.slice(3)); // diagnose message, variants, parameters, API versions, trusted
    expect(dpkg(root, ['--verify', 'ganeti-os-pkgos']).stdout).toBe('');

    // The scripts read the node's conffile over the shipped defaults.
    const runVerify = () =>
      spawnSync(path.join(osDir, 'verify'), ['parameters'], {
        encoding: 'utf8',
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', GANETI_OS_SYSCONFDIR: etc, OS_API_VERSION: '20', OS_NAME: 'pkgos', OS_VARIANT: 'alpha', DEBUG_LEVEL: '0' },
      });
    fs.appendFileSync(path.join(etc, 'ganeti/pkgos/defaults.conf'), 'SETTING=node\ngos_log "SETTING=$SETTING"\n');
    expect(runVerify().stderr).toContain('SETTING=node');
    const verified = dpkg(root, ['--verify', 'ganeti-os-pkgos']).stdout;
    expect(verified).toMatch(/^\?\?5\?\?\?\?\?\? c \/etc\/ganeti\/pkgos\/defaults\.conf$/m);

    // Version 2: a new variant, and a changed shipped defaults.conf.
    expect((await cli(['add-variant', 'beta', '--os-dir', dir])).code).toBe(0);
    fs.appendFileSync(path.join(dir, 'defaults.conf'), 'NEW_SETTING=2\n');
    const v2 = await pack(dir, ['--version', '2']);
    expect(v2.code).toBe(0);
    const up = dpkg(root, ['-i', v2.stdout.trim()]);
    expect(up.status).toBe(0);
    expect(fs.readFileSync(path.join(etc, 'ganeti/pkgos/defaults.conf'), 'utf8')).toContain('SETTING=node');
    expect(fs.readFileSync(path.join(etc, 'ganeti/pkgos/defaults.conf.dpkg-dist'), 'utf8')).toContain('NEW_SETTING=2');
    expect(fs.readFileSync(path.join(osDir, 'defaults.conf'), 'utf8')).toContain('NEW_SETTING=2');
    expect(fs.existsSync(path.join(etc, 'ganeti/pkgos/variants/beta.conf'))).toBe(true);
    const after = diag(path.dirname(osDir)).result[0];
    expect(after[4]).toEqual(['alpha', 'beta']);
    expect(sh('dpkg-query', [`--admindir=${root}/var/lib/dpkg`, '-W', '-f=${Version}', 'ganeti-os-pkgos']).stdout).toBe('2');
    expect(runVerify().stderr).toContain('SETTING=node');

    // Purge: nothing of the package remains, edited conffile and .dpkg-dist included.
    expect(dpkg(root, ['--purge', 'ganeti-os-pkgos']).status).toBe(0);
    const left = sh('find', [root, '-mindepth', '1', '-not', '-path', `${root}/var*`]).stdout.trim();
    expect(left).toBe('');
  });
});
