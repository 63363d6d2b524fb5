/**
 * Loading a bundle with V8's code cache (src/code-cache.ts, as dist/bundles/*.js do): the same
 * exports with or without a cache, the cache written once per bundle text (a rebuilt bundle
 * replaces its old entry), a damaged entry compiled anew and rewritten, nothing kept with
 * GANETI_OS_NO_CACHE.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, tempDir } from './helpers/cli';
import { describeSystem } from './helpers/system';

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const LOADER = path.join(REPO, 'src', 'code-cache.ts');

/** Load `file` through the loader in a Node process of its own; what its exports say. */
function load(file: string, env: Record<string, string> = {}): { out: unknown; stderr: string } {
  // The loader from src, compiled by TypeScript's transpiler (no build needed).
  const ts = require('typescript') as typeof import('typescript');
  const js = ts.transpileModule(fs.readFileSync(LOADER, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
  const loader = path.join(dir, 'loader.js');
  fs.writeFileSync(loader, js);
  const r = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(loader)}).requireWithCodeCache(process.argv[1], module); process.stdout.write(JSON.stringify(m.answer()));`, file], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, XDG_CACHE_HOME: path.join(dir, 'cache'), ...env },
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return { out: JSON.parse(r.stdout), stderr: r.stderr };
}

const entries = () => {
  const d = path.join(dir, 'cache', 'ganeti-os', 'v8');
  return fs.existsSync(d) ? fs.readdirSync(d).sort() : [];
};

function bundle(answer: string): string {
  const file = path.join(dir, 'b.bundle.js');
  const helper = path.join(dir, 'helper.js');
  fs.writeFileSync(helper, 'module.exports = (x) => `helped ${x}`;\n');
  fs.writeFileSync(file, `'use strict';\nconst help = require('./helper');\nexports.answer = () => ({ answer: help(${JSON.stringify(answer)}), dirname: __dirname, filename: __filename, main: module.filename, cached: require.cache[__filename] === module });\n`);
  return file;
}

describe('bundles loaded with the code cache', () => {
  it('the same exports as require, with and without a cache; one entry, written by the first run', () => {
    const file = bundle('one');
    const want = { answer: 'helped one', dirname: dir, filename: file, main: file, cached: true };
    expect(load(file).out).toEqual(want);
    const written = entries();
    expect(written).toEqual([expect.stringMatching(/^b\.bundle-v\d+\.\d+\.\d+-[a-z0-9]+(-\d+){5}\.bin$/)]);
    const entry = path.join(dir, 'cache', 'ganeti-os', 'v8', written[0]);
    const mtime = fs.statSync(entry).mtimeMs;
    expect(load(file).out).toEqual(want);
    expect(entries()).toEqual(written);
    expect(fs.statSync(entry).mtimeMs).toBe(mtime);
  });

  it('a rebuilt bundle gets its own entry and the old one goes', () => {
    const file = bundle('one');
    load(file);
    const before = entries();
    bundle('two');
    expect(load(file).out).toMatchObject({ answer: 'helped two' });
    const after = entries();
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
  });

  it('a damaged entry: compiled anew, the same exports, the entry rewritten', () => {
    const file = bundle('one');
    load(file);
    const entry = path.join(dir, 'cache', 'ganeti-os', 'v8', entries()[0]);
    fs.writeFileSync(entry, Buffer.from('not V8 code at all'));
    expect(load(file).out).toMatchObject({ answer: 'helped one' });
    expect(fs.readFileSync(entry).toString()).not.toBe('not V8 code at all');
  });

  it('GANETI_OS_NO_CACHE, or a cache that cannot be written: compiled every time, the same exports', () => {
    const file = bundle('one');
    expect(load(file, { GANETI_OS_NO_CACHE: '1' }).out).toMatchObject({ answer: 'helped one' });
    expect(entries()).toEqual([]);
    fs.writeFileSync(path.join(dir, 'cache'), 'a file where the cache directory would be\n');
    expect(load(file).out).toMatchObject({ answer: 'helped one' });
  });
});

describe('what a killed run left in the cache', () => {
  it('a temporary entry older than a minute goes when the bundle is next cached; a fresh one (a live writer) stays', () => {
    const file = bundle('one');
    load(file);
    const v8 = path.join(dir, 'cache', 'ganeti-os', 'v8');
    const [entry] = entries();
    const old = path.join(v8, `${entry}.tmp-999999`);
    const fresh = path.join(v8, `${entry}.tmp-999998`);
    fs.writeFileSync(old, 'half');
    fs.writeFileSync(fresh, 'half');
    const past = new Date(Date.now() - 120_000);
    fs.utimesSync(old, past, past);
    bundle('two'); // a rebuild: the next run writes an entry, and clears what is stale
    load(file);
    const now = entries();
    expect(now).toHaveLength(2);
    expect(now).toEqual(expect.arrayContaining([expect.stringMatching(/\.bin$/), `${entry}.tmp-999998`]));
    expect(fs.existsSync(old)).toBe(false);
  });
});

describe('whose cache is used', () => {
  it('a home that does not exist is never made: no cache, the same exports', () => {
    const file = bundle('one');
    const home = path.join(dir, 'no-such-home', 'x');
    expect(load(file, { HOME: home, XDG_CACHE_HOME: '' }).out).toMatchObject({ answer: 'helped one' });
    expect(fs.existsSync(path.join(dir, 'no-such-home'))).toBe(false);
  });

  it('a cache directory others may write is not used', () => {
    const file = bundle('one');
    load(file);
    const v8 = path.join(dir, 'cache', 'ganeti-os', 'v8');
    const [entry] = entries();
    fs.writeFileSync(path.join(v8, entry), Buffer.from('planted'));
    fs.chmodSync(path.join(dir, 'cache', 'ganeti-os'), 0o777);
    expect(load(file).out).toMatchObject({ answer: 'helped one' });
    // Neither read nor rewritten: the planted entry stays as it was.
    expect(fs.readFileSync(path.join(v8, entry), 'utf8')).toBe('planted');
  });
});

describeSystem('whose cache is used, as root', { root: true }, () => {
  it("another user's cache (root with a user's HOME, as sudo -E leaves it) is neither read nor written", () => {
    const file = bundle('one');
    load(file);
    const v8 = path.join(dir, 'cache', 'ganeti-os', 'v8');
    const [entry] = entries();
    fs.writeFileSync(path.join(v8, entry), Buffer.from('planted'));
    for (const d of [path.join(dir, 'cache'), path.join(dir, 'cache', 'ganeti-os'), v8]) fs.chownSync(d, 65534, 65534);
    expect(load(file).out).toMatchObject({ answer: 'helped one' });
    expect(fs.readFileSync(path.join(v8, entry), 'utf8')).toBe('planted');
    expect(entries()).toEqual([entry]);
  });
});
