/** `ganeti-os validate`: exit codes, output, warnings beyond Ganeti, --strict, --json, --shellcheck. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSync } from '../src/system/process';
import { def, writeCase } from './helpers/corpus';
import { cli, tempDir } from './helpers/cli';

let root: string;
beforeAll(() => {
  root = tempDir('validate');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const mk = (name: string, over: Parameters<typeof def>[0] = {}) => writeCase(path.join(root, 'os'), { name, files: def(over) });
const codes = (stdout: string) => (JSON.parse(stdout).results[0].warnings as { code: string }[]).map((w) => w.code).sort();

describe('validate', () => {
  it('a clean definition: valid, no warnings, exit 0 (also with --strict)', async () => {
    const d = mk('clean');
    const r = await cli(root, ['validate', d, '--strict']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${d}: valid (API 20, 15, 10; variants: default, minimal; parameters: root-size, filesystem)\n`);
  });

  it('defaults to the current directory', async () => {
    const d = mk('here');
    const r = await cli(d, ['validate', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).results[0].dir).toBe(d);
  });

  it("an invalid definition: Ganeti's message, exit 1", async () => {
    const d = mk('noexport', { export: null });
    const r = await cli(root, ['validate', d]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`invalid: File 'export' under path '${d}' is missing (ENOENT)`);
  });

  it('several directories: exit 1 when any is invalid; JSON has one result each', async () => {
    const a = mk('multi-a');
    const b = mk('multi-b', { ganeti_api_version: '20\n\n' });
    const r = await cli(root, ['validate', a, b, '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.results.map((x: { valid: boolean }) => x.valid)).toEqual([true, false]);
    expect(doc.results[1].error).toBe("API version(s) can't be converted to integer: invalid literal for int() with base 10: ''");
  });

  it('a missing directory: Ganeti says not found, plus a note; exit 1', async () => {
    const r = await cli(root, ['validate', path.join(root, 'nope')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('invalid: Directory for OS nope not found in search path');
    expect(r.stdout).toContain('does not exist');
  });

  it('a non-UTF-8 file: the UnicodeDecodeError Ganeti raises, and what it does to the node', async () => {
    const d = mk('latin', { 'variants.list': Buffer.from('d\xe9faut\n', 'latin1') });
    const r = await cli(root, ['validate', d]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("invalid: 'utf-8' codec can't decode byte 0xe9 in position 1: invalid continuation byte");
    expect(r.stdout).toContain('every OS on it disappears');
  });

  it.each([
    ['parameters-comment-line', { 'parameters.list': '# params\na A\n' }],
    ['parameters-name-only', { 'parameters.list': 'a\n' }],
    ['parameters-duplicate', { 'parameters.list': 'a A\na again\n' }],
    ['unsafe-parameter-name', { 'parameters.list': 'no_cache Disable\n' }],
    ['crlf', { 'variants.list': 'default\r\n' }],
    ['bom', { ganeti_api_version: '15\n', verify: null, 'parameters.list': '\ufeffa A\n' }],
    ['exec-bits', { rename: { mode: 0o744, content: '#!/bin/sh\n' } }],
    ['ignored-file', { ganeti_api_version: '15\n10\n' }],
    ['unsafe-variant-name', { 'variants.list': 'good\nbad name\n' }],
    ['variants-duplicate', { 'variants.list': 'a\na\n' }],
    ['variant-config-missing', { 'variants/default.conf': 'X=1\n' }],
  ])('warns: %s (valid for Ganeti, exit 0; --strict makes it exit 1)', async (code, over) => {
    const d = mk(`warn-${code}`, over as Parameters<typeof def>[0]);
    const r = await cli(root, ['validate', d, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).results[0].valid).toBe(true);
    expect(codes(r.stdout)).toContain(code);
    const s = await cli(root, ['validate', d, '--strict']);
    expect(s.code).toBe(1);
    expect(s.stdout).toMatch(/\n {2}error: /);
  });

  it.each([
    ['api-unsupported', { ganeti_api_version: '20\n5\n' }],
    ['untrusted', { create_untrusted: { mode: 0o755, content: '#!/bin/sh\n' } }],
  ])('notes: %s (never a failure, even with --strict)', async (code, over) => {
    const d = mk(`note-${code}`, over as Parameters<typeof def>[0]);
    const r = await cli(root, ['validate', d, '--json', '--strict']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).results[0].notes.map((n: { code: string }) => n.code)).toEqual([code]);
  });

  it('variant configuration where the shell code keeps it (debootstrap style VARIANTS_DIR)', async () => {
    const confDir = path.join(root, 'etc-variants');
    fs.mkdirSync(confDir, { recursive: true });
    fs.writeFileSync(path.join(confDir, 'default.conf'), 'SUITE=bookworm\n');
    const d = mk('dbs-like', {
      'variants.list': 'default\nminimal\n',
      'common.sh': `: \${VARIANTS_DIR:="${confDir}"}\nVARIANT_CONFIG="$VARIANTS_DIR/$OS_VARIANT.conf"\n`,
    });
    const r = await cli(root, ['validate', d]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`variant 'minimal' has no ${confDir}/minimal.conf`);
    expect(r.stdout).not.toContain("variant 'default' has no");
  });

  it('a script whose #! line ends in CR is called out', async () => {
    const d = mk('crlf-script', { create: { mode: 0o755, content: '#!/bin/sh\r\nexit 0\r\n' } });
    const r = await cli(root, ['validate', d]);
    expect(r.stdout).toMatch(/'create' has a CR .* at the end of its '#!' line/);
  });

  const hasShellcheck = runSync(['sh', '-c', 'command -v shellcheck']).status === 0;
  (hasShellcheck ? it : it.skip)("--shellcheck keeps ShellCheck's levels: error and warning fail --strict, info and style are notes", async () => {
    const d = mk('sc', { create: { mode: 0o755, content: '#!/bin/sh\necho $1\n' } });
    let r = await cli(root, ['validate', d, '--shellcheck', '--json']);
    expect(r.code).toBe(0);
    let res = JSON.parse(r.stdout).results[0];
    expect(res.notes.map((n: { code: string; level: string }) => [n.code, n.level])).toContainEqual(['shellcheck-SC2086', 'info']);
    expect(res.warnings).toEqual([]);
    expect(res.shellcheck).toEqual({ create: { info: 1 } });
    expect((await cli(root, ['validate', d, '--shellcheck', '--strict'])).code).toBe(0);
    const t = await cli(root, ['validate', d, '--shellcheck']);
    expect(t.stdout).toContain('  shellcheck create: 1 info (notes only)\n    create:2:6: info: ');
    expect(t.stdout).not.toMatch(/warning:/);

    const e = mk('sc-levels', { create: { mode: 0o755, content: '#!/bin/sh\nfoo=1\necho $1\nfor f in $(ls); do echo "$f"; done\n' } });
    r = await cli(root, ['validate', e, '--shellcheck', '--json']);
    expect(r.code).toBe(0);
    res = JSON.parse(r.stdout).results[0];
    expect(res.shellcheck).toEqual({ create: { warning: 1, info: 1, error: 1 } });
    expect(res.warnings.map((w: { code: string; level: string }) => [w.code, w.level]).sort()).toEqual([['shellcheck-SC2034', 'warning'], ['shellcheck-SC2045', 'error']]);
    const s = await cli(root, ['validate', e, '--shellcheck', '--strict']);
    expect(s.code).toBe(1);
    expect(s.stdout).toContain('  shellcheck create: 1 error, 1 warning, 1 info (fails --strict)\n');
    expect(s.stdout).toMatch(/\n {4}create:4:\d+: error: .*\[SC2045\]/);
  });

  (hasShellcheck ? it : it.skip)('--shellcheck also reads the files the scripts run: what they source, lib/*.sh, defaults.conf, variants/*.conf', async () => {
    const d = path.join(root, 'sc-lib');
    expect((await cli(root, ['new', 'sc-lib', '--template', 'blank', '--yes'])).code).toBe(0);
    expect((await cli(root, ['validate', d, '--shellcheck', '--strict'])).code).toBe(0);
    fs.appendFileSync(path.join(d, 'lib', 'steps.sh'), '\nwipe_it() {\n  rm -rf $DIR/*\n}\n');
    fs.appendFileSync(path.join(d, 'defaults.conf'), '\nLIST=$(ls $HOME)\n');
    const r = await cli(root, ['validate', d, '--shellcheck', '--json']);
    const res = JSON.parse(r.stdout).results[0];
    const found = [...res.warnings, ...res.notes].map((p: { code: string; file?: string }) => `${p.file}:${p.code}`);
    expect(found).toEqual(expect.arrayContaining(['lib/steps.sh:shellcheck-SC2115', 'defaults.conf:shellcheck-SC2086']));
    expect(Object.keys(res.shellcheck).sort()).toEqual(['defaults.conf', 'lib/steps.sh']);
    expect((await cli(root, ['validate', d, '--shellcheck', '--strict'])).code).toBe(1);
  });

  it('--shellcheck without shellcheck: a clear error', async () => {
    const d = mk('sc2');
    const r = await cli(root, ['validate', d, '--shellcheck'], { PATH: path.join(root, 'empty-bin') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/shellcheck, which is not installed/);
  });
});
