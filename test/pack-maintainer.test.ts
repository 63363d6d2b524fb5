/**
 * Issue 21: `pack` after changing only `--maintainer` says what changed (the maintainer, from
 * the old one to the new one), never "no file of the definition changed" beside "changed since
 * version 1"; the new version's changelog entry says it too.
 */
import { runSync } from '../src/system/process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { runCli, tempDir } from './helpers/cli';
import { describeSystem } from './helpers/system';

jest.setTimeout(60_000);

let work: string;
beforeEach(() => {
  work = tempDir('packmaint');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

describeSystem('pack --maintainer', { commands: ['dpkg-deb'] }, () => {
  it('a changed maintainer is named as the change, from the old one to the new one', () => {
    expect(runCli(['new', 'os', '--template', 'blank', '--yes'], { cwd: work }).code).toBe(0);
    const d = path.join(work, 'os');
    const out = path.join(work, 'out');
    const pack = (...extra: string[]) => runCli(['pack', '--os-dir', d, '--output', out, ...extra], { cwd: work, env: { SOURCE_DATE_EPOCH: '1700000000' } });
    expect(pack('--maintainer', 'Ann Old <ann@example.org>').code).toBe(0);

    const refused = pack('--maintainer', 'Bob New <bob@example.org>');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('changed since version 1');
    expect(refused.stderr).toContain('--version 2');
    expect(refused.stderr).toContain('Maintainer: changed from Ann Old <ann@example.org> to Bob New <bob@example.org>');
    expect(refused.stderr).not.toMatch(/no file of the definition changed/);

    const packed = pack('--maintainer', 'Bob New <bob@example.org>', '--version', '2');
    expect([packed.code, packed.stderr]).toEqual([0, expect.any(String)]);
    const deb = path.join(out, 'ganeti-os-os_2_all.deb');
    const x = path.join(work, 'x');
    expect(runSync(['dpkg-deb', '-x', deb, x]).status).toBe(0);
    const changelog = zlib.gunzipSync(fs.readFileSync(path.join(x, 'usr/share/doc/ganeti-os-os/changelog.gz'))).toString('utf8');
    // The newest entry, its lines unwrapped (the changelog wraps at 80 columns).
    const entry2 = changelog.split(/\n(?=ganeti-os-os \()/)[0].replace(/\n\s+(?!\*|--)/g, ' ');
    expect(entry2).toMatch(/^ganeti-os-os \(2\)/);
    expect(entry2).toContain('Maintainer: changed from Ann Old <ann@example.org> to Bob New <bob@example.org>.');
    expect(entry2).not.toMatch(/Rebuilt: no file/);
  });

  it('a new version with nothing changed still says it is a rebuild', () => {
    expect(runCli(['new', 'os', '--template', 'blank', '--yes'], { cwd: work }).code).toBe(0);
    const d = path.join(work, 'os');
    const out = path.join(work, 'out');
    const pack = (...extra: string[]) => runCli(['pack', '--os-dir', d, '--output', out, '--maintainer', 'Ann <ann@example.org>', ...extra], { cwd: work });
    expect(pack().code).toBe(0);
    expect(pack('--version', '2').code).toBe(0);
    const record = JSON.parse(fs.readFileSync(path.join(d, '.ganeti-os-package.json'), 'utf8')) as { releases: { version: string; changes: string[] }[] };
    expect(record.releases[0]).toEqual(expect.objectContaining({ version: '2', changes: ['Rebuilt: no file of the definition changed (packaging only).'] }));
  });
});
