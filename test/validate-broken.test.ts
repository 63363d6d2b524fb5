/**
 * Issue 9, section 3 (and issue 14's conflict markers): validate's exit status answers "will
 * instance operations work?", with Ganeti's verdict shown word for word beside it. Every
 * finding that means they will fail makes it exit 1, even though Ganeti says "valid".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runAddVariant } from '../src/commands/add-variant';
import { runBumpApi } from '../src/commands/bump-api';
import { conflictMarkerFindings } from '../src/definition/checks';
import { def, writeCase } from './helpers/corpus';
import { tryOsFromDisk, validateOs } from './helpers/ganeti';
import { describeReleases, describeSystem } from './helpers/system';
import { cli, runCommand, tempDir, treeHash } from './helpers/cli';

let root: string;
beforeAll(() => {
  root = tempDir('validate-broken');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const mk = (name: string, over: Parameters<typeof def>[0] = {}) => writeCase(path.join(root, 'os'), { name, files: def(over) });
const SOURCING = '#!/bin/bash\nset -e\n. "$(dirname "$(readlink -f "$0")")/lib/steps.sh"\nexit 0\n';
const sourcing = (over: Parameters<typeof def>[0] = {}) => {
  const out: Parameters<typeof def>[0] = { 'lib/steps.sh': 'step() { :; }\n', 'defaults.conf': 'A=1\n', 'variants/default.conf': 'X=1\n', 'variants/minimal.conf': 'X=2\n' };
  for (const s of ['create', 'import', 'export', 'rename', 'verify']) out[s] = { mode: 0o755, content: SOURCING };
  return { ...out, ...over };
};

async function expectBroken(d: string, code: string): Promise<void> {
  const r = await cli(root, ['validate', d, '--json']);
  expect(r.code).toBe(1);
  const res = JSON.parse(r.stdout).results[0];
  // Ganeti's own verdict is still there, word for word.
  expect(res.valid).toBe(true);
  expect(res.ganeti.ok).toBe(true);
  expect(res.works).toBe(false);
  expect(res.errors.map((e: { code: string }) => e.code)).toContain(code);
  const t = await cli(root, ['validate', d]);
  expect(t.code).toBe(1);
  expect(t.stdout).toContain(`${d}: valid (`);
  expect(t.stdout).toMatch(/\n {2}error: /);
  expect(t.stdout).toMatch(/instance operations will fail/);
}

describe('validate: findings that mean instance operations fail make it exit 1', () => {
  it('a clean sourcing definition passes', async () => {
    const d = mk('clean-sourcing', sourcing());
    const r = await cli(root, ['validate', d, '--strict']);
    expect(r.stdout).toBe(`${d}: valid (API 20, 15, 10; variants: default, minimal; parameters: root-size, filesystem)\n`);
    expect(r.code).toBe(0);
  });

  it.each([
    ['lib/steps.sh', 'step() {\n  if true; then :\n}\n'],
    ['defaults.conf', 'A="unterminated\n'],
    ['variants/minimal.conf', 'X=$(\n'],
  ])('a syntax error (bash -n) in %s, which the scripts source', async (file, text) => {
    const d = mk(`syntax-${file.replace(/\W/g, '-')}`, sourcing({ [file]: text }));
    await expectBroken(d, 'shell-syntax');
    const r = await cli(root, ['validate', d, '--json']);
    const e = JSON.parse(r.stdout).results[0].errors.find((x: { code: string }) => x.code === 'shell-syntax');
    expect(e.file).toBe(file);
  });

  it('a syntax error in a script itself', async () => {
    await expectBroken(mk('syntax-script', { create: { mode: 0o755, content: '#!/bin/bash\nif then\n' } }), 'shell-syntax');
  });

  it('a file another sourced file sources (debootstrap style common.sh)', async () => {
    const script = '#!/bin/bash\nset -e\n. common.sh\n';
    const files: Parameters<typeof def>[0] = { 'common.sh': 'f() {\n' };
    for (const s of ['create', 'import', 'export', 'rename', 'verify']) files[s] = { mode: 0o755, content: script };
    await expectBroken(mk('syntax-common', files), 'shell-syntax');
  });

  it('a sourced file that is missing', async () => {
    const d = mk('source-missing', sourcing({ 'lib/steps.sh': null }));
    await expectBroken(d, 'sourced-missing');
  });

  it('a syntax error in a file a foreign definition sources through a variable, or in its VARIANTS_DIR', async () => {
    const site = path.join(root, 'dbs-site');
    fs.mkdirSync(path.join(site, 'variants'), { recursive: true });
    fs.writeFileSync(path.join(site, 'defaults'), 'MIRROR=ok\n');
    fs.writeFileSync(path.join(site, 'variants', 'default.conf'), 'SUITE=bookworm\n');
    const common = `DEFAULT_FILE="${site}/defaults"\nif [ -f "$DEFAULT_FILE" ]; then\n  . "$DEFAULT_FILE"\nfi\n: \${VARIANTS_DIR:="${site}/variants"}\nVARIANT_CONFIG="$VARIANTS_DIR/$OS_VARIANT.conf"\n`;
    const script = '#!/bin/bash\n. common.sh\n';
    const files: Parameters<typeof def>[0] = { 'common.sh': common, 'variants.list': 'default\n' };
    for (const s of ['create', 'import', 'export', 'rename', 'verify']) files[s] = { mode: 0o755, content: script };
    const d = mk('dbs-site-def', files);
    let r = await cli(root, ['validate', d]);
    expect(r.code).toBe(0);
    fs.writeFileSync(path.join(site, 'defaults'), 'if\n');
    await expectBroken(d, 'shell-syntax');
    fs.writeFileSync(path.join(site, 'defaults'), 'MIRROR=ok\n');
    fs.writeFileSync(path.join(site, 'variants', 'default.conf'), 'SUITE=(\n');
    await expectBroken(d, 'shell-syntax');
    r = await cli(root, ['validate', d]);
    expect(r.stdout).toContain(path.join(site, 'variants', 'default.conf'));
  });

  it('even --shellcheck --strict failed to see a syntax error before', async () => {
    const d = mk('syntax-strict', sourcing({ 'lib/steps.sh': 'if\n' }));
    const r = await cli(root, ['validate', d, '--strict']);
    expect(r.code).toBe(1);
  });

  it("a CR at the end of a script's #! line (the kernel cannot execute it)", async () => {
    await expectBroken(mk('cr-shebang', { create: { mode: 0o755, content: '#!/bin/sh\r\nexit 0\r\n' } }), 'crlf-shebang');
  });

  it("a script without #! (Ganeti executes it directly: ENOEXEC)", async () => {
    await expectBroken(mk('no-shebang', { create: { mode: 0o755, content: 'exit 0\n' } }), 'no-shebang');
  });

  it('a script whose #! interpreter does not exist (the kernel cannot execute it)', async () => {
    await expectBroken(mk('no-interpreter', { create: { mode: 0o755, content: '#!/usr/bin/python2.4\nprint 1\n' } }), 'interpreter-missing');
  });

  it('a blank line in parameters.list', async () => {
    await expectBroken(mk('param-blank', { 'parameters.list': 'a A\n\nb B\n' }), 'parameters-blank-line');
  });

  it('a variants.list symlink whose target is missing, while variants/*.conf exist', async () => {
    const d = mk('variants-dangling', { 'variants.list': { symlink: '/nonexistent/variants.list' }, 'variants/default.conf': 'X=1\n' });
    await expectBroken(d, 'variants-none');
  });

  it('an empty variants.list while variants/*.conf exist', async () => {
    await expectBroken(mk('variants-empty', { 'variants.list': '# none yet\n', 'variants/default.conf': 'X=1\n' }), 'variants-none');
  });

  it('scripts that reject the API version Ganeti passes', async () => {
    const common = '#!/bin/bash\nif [ "$OS_API_VERSION" = "10" ]; then\n  :\nelse\n  echo "Unknown OS API VERSION $OS_API_VERSION" >&2\n  exit 1\nfi\n';
    const d = mk('api-rejected', { create: { mode: 0o755, content: common } });
    await expectBroken(d, 'api-rejected');
  });

  it('scripts handling every listed version (ganeti-instance-debootstrap) are fine', async () => {
    const fixture = path.join(__dirname, 'fixtures', 'foreign-debootstrap', 'os', 'debootstrap', 'common.sh');
    const script = '#!/bin/bash\n. common.sh\n';
    const files: Parameters<typeof def>[0] = { 'common.sh': fs.readFileSync(fixture, 'utf8'), 'variants.list': 'default\n' };
    for (const s of ['create', 'import', 'export', 'rename']) files[s] = { mode: 0o755, content: script };
    // Its own verify: a verify that sources common.sh as the others do fails in Ganeti's
    // ValidateOS (common.sh demands INSTANCE_NAME, which verify does not get).
    files.verify = { mode: 0o755, content: fs.readFileSync(path.join(path.dirname(fixture), 'verify'), 'utf8') };
    const d = mk('api-handled', files);
    const r = await cli(root, ['validate', d, '--json']);
    const res = JSON.parse(r.stdout).results[0];
    expect(res.errors).toEqual([]);
  });

  it('no false alarm: a script that special-cases one version, or checks a range', async () => {
    for (const [name, body] of [
      ['api-special-case', 'if [ "$OS_API_VERSION" = "20" ]; then echo "invalid version of nothing"; fi\nexit 0\n'],
      ['api-range', 'if [ "$OS_API_VERSION" -lt 10 ]; then echo "Unknown OS API VERSION" >&2; exit 1; fi\n'],
    ]) {
      const d = mk(name, { ganeti_api_version: '15\n10\n', verify: null, 'parameters.list': null, create: { mode: 0o755, content: `#!/bin/sh\n${body}` } });
      const r = await cli(root, ['validate', d, '--json']);
      expect([name, JSON.parse(r.stdout).results[0].errors]).toEqual([name, []]);
    }
  });

  it('merge-conflict markers in a script (Ganeti calls it valid)', async () => {
    const text = '#!/bin/sh\n<<<<<<< mine\necho a\n=======\necho b\n>>>>>>> theirs\n';
    const d = mk('conflict', { create: { mode: 0o755, content: text }, 'README.md': 'Title\n=======\n' });
    await expectBroken(d, 'conflict-markers');
    const found = conflictMarkerFindings(d);
    expect(found.map((f) => [f.file, f.line])).toEqual([['create', 2]]);
  });

  it('a write that was killed half-way (its journal is still there): a warning, whether the mix works is not known', async () => {
    const d = mk('interrupted', { '.ganeti-os.journal': JSON.stringify({ state: 'pending', entries: [], createdDirs: [] }) });
    const r = await cli(root, ['validate', d, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).results[0].warnings.map((w: { code: string }) => w.code)).toContain('interrupted-write');
    expect((await cli(root, ['validate', d, '--strict'])).code).toBe(1);
  });

  it('warnings stay warnings: exit 0 without --strict', async () => {
    const d = mk('only-warning', { rename: { mode: 0o744, content: '#!/bin/sh\n' } });
    const r = await cli(root, ['validate', d]);
    expect(r.code).toBe(0);
  });
});

describe('variant configuration findings come from what the scripts read', () => {
  const rubyDef = () => {
    const confDir = path.join(root, 'rb-variants');
    fs.mkdirSync(confDir, { recursive: true });
    fs.writeFileSync(path.join(confDir, 'default.rb'), 'SUITE = "bookworm"\n');
    const common = `: \${VARIANTS_DIR:="${confDir}"}\nload_variant() { ruby "$VARIANTS_DIR/$OS_VARIANT.rb"; }\n`;
    const script = '#!/bin/bash\n. common.sh\n';
    const files: Parameters<typeof def>[0] = { 'common.sh': common, 'variants.list': 'default\nminimal\n' };
    for (const s of ['create', 'import', 'export', 'rename', 'verify']) files[s] = { mode: 0o755, content: script };
    return { d: mk(`ruby-${Math.random().toString(36).slice(2)}`, files), confDir };
  };

  it('a definition reading variants/<v>.rb gets no "missing <v>.conf" warning', async () => {
    const { d, confDir } = rubyDef();
    const r = await cli(root, ['validate', d]);
    expect(r.stdout).not.toMatch(/\.conf/);
    expect(r.stdout).toContain(`variant 'minimal' has no ${confDir}/minimal.rb`);
  });

  it('add-variant on it creates no .conf nothing reads', async () => {
    const { d, confDir } = rubyDef();
    const r = await runCommand(runAddVariant, d, { variant: 'extra' });
    expect(r.code).toBe(0);
    expect(fs.readdirSync(confDir).filter((f) => f.endsWith('.conf'))).toEqual([]);
    expect(fs.existsSync(path.join(d, 'variants'))).toBe(false);
    expect(r.err).toMatch(/extra\.rb/);
  });
});

describe('add-variant on a definition whose scripts read variants/<v>.rb of their own directory', () => {
  it.each([
    ['relative to the OS directory (Ganeti runs scripts there)', 'ruby variants/$OS_VARIANT.rb'],
    ['quoted, with braces', 'ruby "variants/${OS_VARIANT}.rb"'],
    ['through dirname "$0"', '. "$(dirname "$(readlink -f "$0")")/variants/$OS_VARIANT.rb"'],
    ['through a variable set to the script directory', 'DIR=$(dirname "$(readlink -f "$0")")\nruby "$DIR/variants/$OS_VARIANT.rb"'],
    ['through a path the code does not show (the variants kept as .rb files)', 'ruby "$CONFDIR/$OS_VARIANT.rb"'],
  ])('%s: no variants/x.conf, and the note names variants/x.rb', async (_what, line) => {
    const files: Parameters<typeof def>[0] = { 'variants.list': 'default\n', 'variants/default.rb': 'SUITE = "bookworm"\n', ...Object.fromEntries(['create', 'import', 'export', 'rename', 'verify'].map((s) => [s, { mode: 0o755, content: `#!/bin/bash\nset -e\n${line}\n` }])) };
    const d = mk(`rb-own-${Math.random().toString(36).slice(2)}`, files);
    const r = await runCommand(runAddVariant, d, { variant: 'extra' });
    expect(r.code).toBe(0);
    expect(fs.readdirSync(path.join(d, 'variants'))).toEqual(['default.rb']);
    expect(r.err).toContain('its scripts read variants/extra.rb; write it by hand');
    expect(fs.readFileSync(path.join(d, 'variants.list'), 'utf8')).toBe('default\nextra\n');
  });
});

describe('bump-api refuses (or with --force warns) when the scripts reject the new version', () => {
  it('without --force: exit 1 naming the rejection, nothing changed', async () => {
    const common = '#!/bin/bash\ncase "$OS_API_VERSION" in\n  10|15) ;;\n  *) echo "Unsupported OS API version" >&2; exit 1 ;;\nesac\n';
    const files: Parameters<typeof def>[0] = { ganeti_api_version: '15\n10\n', 'variants.list': 'default\n', 'parameters.list': null, verify: null };
    for (const s of ['create', 'import', 'export', 'rename']) files[s] = { mode: 0o755, content: common };
    const d = mk('bump-refused', files);
    const before = treeHash(d);
    const r = await runCommand(runBumpApi, d, { version: '20' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/OS_API_VERSION.*20/);
    expect(r.err).toContain('--force');
    expect(treeHash(d)).toBe(before);
  });

  it('--force warns before writing, and validate then finds it', async () => {
    const common = '#!/bin/bash\ncase "$OS_API_VERSION" in\n  10) ;;\n  *) echo "Unsupported OS API version" >&2; exit 1 ;;\nesac\n';
    const files: Parameters<typeof def>[0] = { ganeti_api_version: '10\n', 'variants.list': null, 'parameters.list': null, verify: null };
    for (const s of ['create', 'import', 'export', 'rename']) files[s] = { mode: 0o755, content: common };
    const d = mk('bump-rejected', files);
    const r = await runCommand(runBumpApi, d, { version: '20', force: true });
    expect(r.err).toMatch(/warning: .*scripts.*OS_API_VERSION.*20/);
    await expectBroken(d, 'api-rejected');
  });
});

describeReleases("Ganeti's own code agrees that these break instance operations", {}, (release) => {
  const tag = release.replace('.', '-');
  it("a blank parameters.list line: _TryOSFromDisk says valid, the node's parameter check crashes", () => {
    const d = mk(`g-param-blank-${tag}`, { 'parameters.list': 'a A\n\nb B\n' });
    expect(tryOsFromDisk(d, release).ok).toBe(true);
    expect(validateOs(d, `g-param-blank-${tag}+default`, { a: 'x' }, false, release).ok).toBe(false);
  });

  it('an empty variants.list: valid, but every os+variant is refused', () => {
    const d = mk(`g-variants-empty-${tag}`, { 'variants.list': '# none\n', 'variants/default.conf': 'X=1\n' });
    expect(tryOsFromDisk(d, release).ok).toBe(true);
    expect(validateOs(d, `g-variants-empty-${tag}+default`, {}, false, release).ok).toBe(false);
  });
});

it('a clean definition generated by ganeti-os stays clean (no false errors)', async () => {
  const r = await runCommand((await import('../src/commands/new')).runNew, root, { name: 'gen-deb', yes: true });
  expect(r.code).toBe(0);
  const before = treeHash(path.join(root, 'gen-deb'));
  const v = await cli(root, ['validate', path.join(root, 'gen-deb'), '--strict']);
  expect(v.stdout).not.toMatch(/error/);
  expect(v.code).toBe(0);
  // validate reads; it never writes (no lock, no journal, no mode fixed).
  expect(treeHash(path.join(root, 'gen-deb'))).toBe(before);
});

describeSystem("a ganeti-os definition's site configuration on this node (writes /etc/default, /etc/ganeti)", { root: true }, () => {
    it("a syntax error in this node's site configuration of a ganeti-os definition (/etc/default/<os>, /etc/ganeti/<os>/...)", async () => {
      const name = `gos-site-${process.pid}`;
      const r = await runCommand((await import('../src/commands/new')).runNew, root, { name, template: 'blank', yes: true });
      expect(r.code).toBe(0);
      const d = path.join(root, name);
      // Every file the runtime reads on the node: /etc/ganeti/<os>/defaults.conf is pack's conffile.
      const files = [
        path.join('/etc/ganeti', name, 'defaults.conf'),
        path.join('/etc/default', name),
        path.join('/etc/ganeti', name, 'site.conf'),
        path.join('/etc/ganeti', name, 'variants', 'default.conf'),
      ];
      try {
        for (const f of files) {
          fs.mkdirSync(path.dirname(f), { recursive: true });
          fs.writeFileSync(f, 'X="unterminated\n');
        }
        await expectBroken(d, 'shell-syntax');
        const v = await cli(root, ['validate', d, '--json']);
        const bad = JSON.parse(v.stdout).results[0].errors.map((e: { file: string }) => e.file).sort();
        // Each file with its syntax error, and verify, which sources them, refusing the variant.
        expect(bad).toEqual([...files, 'verify'].sort());
      } finally {
        for (const f of files) fs.rmSync(f, { force: true });
        fs.rmSync(path.join('/etc/ganeti', name), { recursive: true, force: true });
      }
    });
});
