/**
 * What a new administrator's trial found wrong: info scanning a directory that is no definition
 * (it exited 0 and walked the whole tree), maintenance commands carrying a byte-order mark of
 * parameters.list into lib/parameters.sh (every verify then failed), and pack shipping a
 * definition whose scripts cannot run without a word.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { newDefinition, runCli, tempDir, treeHash } from './helpers/cli';

let work: string;
beforeEach(() => {
  work = tempDir('trial');
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

const newDef = (name: string, template = 'blank'): string => newDefinition(work, name, ['--template', template, '--api', '20,15,10']);

it('info outside any definition: exit 1 saying it is not one, nothing scanned', () => {
  fs.mkdirSync(path.join(work, 'elsewhere'));
  const r = runCli(['info'], { cwd: path.join(work, 'elsewhere') });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/elsewhere is not an OS definition: it has no ganeti_api_version/);
  expect(r.stdout).toBe('');
  // A broken definition (a create script and nothing else) is still reported.
  const broken = path.join(work, 'broken');
  fs.mkdirSync(broken);
  fs.writeFileSync(path.join(broken, 'create'), '#!/bin/sh\n', { mode: 0o755 });
  const b = runCli(['info', broken]);
  expect(b.code).toBe(0);
  expect(b.stdout).toMatch(/status: +invalid/);
});

it.each(['parameters.list', 'variants.list'])('a byte-order mark at the start of %s: maintenance commands refuse, naming it, nothing changed', (file) => {
  const d = newDef('bom-os');
  const p = path.join(d, file);
  fs.writeFileSync(p, '\uFEFF' + fs.readFileSync(p, 'utf8'));
  const before = treeHash(d);
  for (const args of [['add-param', 'tier', 'the tier'], ['add-variant', 'extra'], ['bump-api', '15', '--force']]) {
    const r = runCli([...args, '--os-dir', d]);
    expect([args[0], r.code]).toEqual([args[0], 1]);
    expect(r.stderr).toContain(`${file} starts with a byte-order mark (U+FEFF)`);
    expect(treeHash(d)).toBe(before);
  }
});

it('pack warns about what validate finds instance operations will hit (a CR on the #! line)', () => {
  const d = newDef('crlf-os');
  const create = path.join(d, 'create');
  fs.writeFileSync(create, fs.readFileSync(create, 'utf8').replace('\n', '\r\n'));
  const r = runCli(['pack', '--os-dir', d, '--output', work, '--maintainer', 'A Admin <admin@example.org>']);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/warning: validate finds an error instance operations will hit \(crlf-shebang\): create: /);
  // A clean definition packs without it.
  const clean = newDef('clean-os');
  const c = runCli(['pack', '--os-dir', clean, '--output', work, '--maintainer', 'A Admin <admin@example.org>']);
  expect(c.code).toBe(0);
  expect(c.stderr).not.toMatch(/validate finds/);
});
