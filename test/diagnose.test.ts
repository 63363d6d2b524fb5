/**
 * `ganeti-os diagnose`: backend.DiagnoseOS's answer over several search directories (hidden
 * entries, stray files, bad names, dot-files), printed as gnt-os diagnose prints it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mount, unmount } from '../src/system/kernel';
import { def, writeCase } from './helpers/corpus';
import { cli, tempDir } from './helpers/cli';
import { ganeti } from './helpers/ganeti';
import { describeReleases, describeSystem } from './helpers/system';

let root: string;
let d1: string;
let d2: string;
beforeAll(() => {
  root = tempDir('diagnose');
  d1 = path.join(root, 'srv');
  d2 = path.join(root, 'usr');
  writeCase(d1, { name: 'alpha', files: def() });
  writeCase(d1, { name: 'beta', files: def({ create: null }) });
  writeCase(d2, { name: 'alpha', files: def({ ganeti_api_version: '10\n', verify: null }) });
  writeCase(d2, { name: 'gamma', files: def({ create: null, create_untrusted: { mode: 0o755, content: '#!/bin/sh\n' } }) });
  writeCase(d2, { name: 'bad.name', files: def() });
  fs.writeFileSync(path.join(d2, 'stray-file'), 'x\n');
  fs.mkdirSync(path.join(d2, '.git'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('diagnose', () => {
  it('prints what gnt-os diagnose prints, hidden entries included; exit 1 when an entry is invalid', async () => {
    const r = await cli(root, ['diagnose', d1, d2, path.join(root, 'absent')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no such search directory: ${path.join(root, 'absent')}`);
    const node = os.hostname();
    expect(r.stdout).toContain(
      `OS: alpha [global status: valid]\n  Variants: [default, minimal]\n  Node: ${node}, status: valid (path: ${d1}/alpha) [API versions: 20, 15, 10] [variants: default, minimal] [parameters: root-size, filesystem] [trusted]\n    [hidden] path: ${d2}/alpha, status: valid\n`,
    );
    expect(r.stdout).toContain(`OS: beta [global status: invalid]\n  Node: ${node}, status: invalid - A create script (trusted or untrusted) under path '${d1}/beta' must exist (path: ${d1}/beta) [no API versions declared] [trusted]\n`);
    expect(r.stdout).toContain(`OS: gamma [global status: valid]`);
    expect(r.stdout).toContain('[untrusted]');
    expect(r.stdout).toContain(`OS: stray-file [global status: invalid]\n  Node: ${node}, status: invalid - Directory for OS stray-file not found in search path`);
    expect(r.stdout).toContain('OS: bad.name [global status: invalid]');
    expect(r.stdout).not.toContain('.git');
    expect(r.stderr).toContain(`${path.join(root, 'absent')}: absent, skipped`);
    // NiceSort order of OS names
    const names = [...r.stdout.matchAll(/^OS: (\S+)/gm)].map((m) => m[1]);
    expect(names).toEqual(['alpha', 'bad.name', 'beta', 'gamma', 'stray-file']);
  });

  it('--json: entries with hiddenBy, and the rows DiagnoseOS returns', async () => {
    const r = await cli(root, ['diagnose', d1, d2, '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.ok).toBe(false);
    const hidden = doc.entries.find((e: { path: string }) => e.path === `${d2}/alpha`);
    expect(hidden).toMatchObject({ name: 'alpha', valid: true, hiddenBy: `${d1}/alpha`, apiVersions: [10], variants: [] });
    expect(doc.diagnoseOS).toHaveLength(doc.entries.length);
  });

  it('only valid definitions: exit 0; a search directory named on the command line that does not exist: exit 1', async () => {
    const r = await cli(root, ['diagnose', d1 + '/../srv-ok']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no such search directory: ${path.join(root, 'srv-ok')}`);
    const only = path.join(root, 'onlygood');
    writeCase(only, { name: 'fine', files: def() });
    const r2 = await cli(root, ['diagnose', only]);
    expect(r2.code).toBe(0);
    expect(r2.stdout).toContain('OS: fine [global status: valid]');
  });

  it('copes with 1000 definitions', async () => {
    const many = path.join(root, 'many');
    for (let i = 0; i < 1000; i++) writeCase(many, { name: `os${i}`, files: def(i % 10 === 0 ? { rename: null } : {}) });
    const r = await cli(root, ['diagnose', many, '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.entries).toHaveLength(1000);
    expect(doc.entries.filter((e: { valid: boolean }) => !e.valid)).toHaveLength(100);
  });
});

describeReleases('diagnose agrees with backend.DiagnoseOS', {}, (release) => {
  it('names that are not UTF-8 come out as os.listdir names them (surrogateescape)', async () => {
    const odd = path.join(root, `odd-${release}`);
    fs.mkdirSync(odd);
    fs.mkdirSync(Buffer.concat([Buffer.from(odd + '/a'), Buffer.from([0xff]), Buffer.from('b')]));
    fs.writeFileSync(Buffer.concat([Buffer.from(odd + '/x'), Buffer.from([0xf0, 0x9f, 0x98]), Buffer.from('y')]), '');
    fs.mkdirSync(path.join(odd, 'caf\u00e9'));
    const g = ganeti({ action: 'diagnose', dirs: [odd] }, release);
    const r = await cli(root, ['diagnose', odd, '--json', '--ganeti', release]);
    expect(JSON.parse(r.stdout)).toMatchObject({ ganeti: release, diagnoseOS: g.result });
    expect(JSON.parse(r.stdout).entries.map((e: { name: string }) => e.name)).toContain('a\udcffb');
  });

  it('same rows, same order, over several search directories', async () => {
    const g = ganeti({ action: 'diagnose', dirs: [d1, d2] }, release);
    expect(g.ok).toBe(true);
    const r = await cli(root, ['diagnose', d1, d2, '--json', '--ganeti', release]);
    expect(JSON.parse(r.stdout)).toMatchObject({ ganeti: release, diagnoseOS: g.result });
  });
});

describeSystem('diagnose on a mount point', { root: true, ganeti: true, commands: ['mount', 'umount'] }, () => {
  it('hides lost+found at the root of a file system, as utils.ListVisibleFiles does', async () => {
    const mnt = path.join(root, 'mnt');
    fs.mkdirSync(mnt);
    mount('tmpfs', mnt, { type: 'tmpfs', options: ['size=4m'] });
    try {
      fs.mkdirSync(path.join(mnt, 'lost+found'));
      writeCase(mnt, { name: 'onmount', files: def() });
      const g = ganeti({ action: 'diagnose', dirs: [mnt] });
      const r = await cli(root, ['diagnose', mnt, '--json']);
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.diagnoseOS).toEqual(g.result);
      expect(doc.entries.map((e: { name: string }) => e.name)).toEqual(['onmount']);
    } finally {
      unmount(mnt);
    }
  });
});
