import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { sha256 } from '../src/definition/provenance';
import { readDefinition } from '../src/definition/model';
import { DEFAULT_TEMPLATE } from '../src/definition/templates';
import { describeSystem } from './helpers/system';
import { runInProcess, scriptedPrompter, snapshotTree, tempDir } from './helpers/cli';

let parent: string;
beforeEach(() => {
  parent = tempDir();
});
afterEach(() => {
  fs.rmSync(parent, { recursive: true, force: true });
});

const newOs = (args: string[], extra: Parameters<typeof runInProcess>[1] extends infer O ? Partial<O> : never = {}) =>
  runInProcess(['new', ...args], { cwd: parent, ...extra });

/** The golden view of a tree: each path with its type and mode, and the Ganeti files' text. */
function golden(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of snapshotTree(root)) {
    out[e.path] = `${e.type} ${e.mode}`;
    if (['ganeti_api_version', 'variants.list', 'parameters.list'].includes(e.path)) {
      out[e.path] += ' ' + JSON.stringify(fs.readFileSync(path.join(root, e.path), 'utf8'));
    }
  }
  return out;
}

describe('new: the blank template', () => {
  it.each([
    ['20,15,10', []],
    ['20', []],
    ['15,10', []],
    ['15', ['--variant', 'alpha', '--variant', 'beta']],
    ['10', []],
    ['20,10', ['--variant', 'one', '--param', 'root-size=Size of the root filesystem', '--param', 'swap=Whether to make swap']],
  ])('API %s %j: golden tree with modes', async (api, extra) => {
    const r = await newOs(['myos', '--template', 'blank', '--api', api, '--yes', ...extra]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(golden(path.join(parent, 'myos'))).toMatchSnapshot();
  });

  it('lists the API versions newest first whatever order they are given in', async () => {
    const r = await newOs(['myos', '--template', 'blank', '--api', '10,20,15', '--yes']);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(parent, 'myos', 'ganeti_api_version'), 'utf8')).toBe('20\n15\n10\n');
  });

  it('writes LF-only UTF-8 files and records every file with its hash and mode', async () => {
    const r = await newOs(['myos', '--template', 'blank', '--param', 'size=Disk size', '--yes']);
    expect(r.code).toBe(0);
    const root = path.join(parent, 'myos');
    const prov = readDefinition(root).provenance!;
    expect(prov.template).toBe('blank');
    expect(prov.answers.parameters.map((p) => p.name)).toEqual(['size']);
    const files = snapshotTree(root).filter((e) => e.type === 'file' && e.path !== '.ganeti-os.json');
    expect(Object.keys(prov.files).sort()).toEqual(files.map((f) => f.path).sort());
    for (const f of files) {
      const buf = fs.readFileSync(path.join(root, f.path));
      expect(buf.includes(0x0d)).toBe(false);
      expect(() => new TextDecoder('utf-8', { fatal: true }).decode(buf)).not.toThrow();
      expect(prov.files[f.path].sha256).toBe(sha256(buf));
      expect(prov.files[f.path].mode).toBe(f.mode.padStart(4, '0'));
    }
  });

  it('does not depend on the umask for modes', async () => {
    const old = process.umask(0o077);
    try {
      const r = await newOs(['myos', '--template', 'blank', '--yes']);
      expect(r.code).toBe(0);
    } finally {
      process.umask(old);
    }
    const modes = Object.fromEntries(snapshotTree(path.join(parent, 'myos')).map((e) => [e.path, e.mode]));
    expect(modes['create']).toBe('0755');
    expect(modes['lib']).toBe('0755');
    expect(modes['variants.list']).toBe('0644');
    expect(fs.statSync(path.join(parent, 'myos')).mode & 0o777).toBe(0o755);
  });

  it('uses the default template without --template', async () => {
    const r = await newOs(['myos', '--yes']);
    expect(r.code).toBe(0);
    expect(readDefinition(path.join(parent, 'myos')).provenance!.template).toBe(DEFAULT_TEMPLATE);
  });
});

describe('new: --dry-run and --json', () => {
  it('--dry-run prints the plan and writes nothing', async () => {
    const r = await newOs(['myos', '--template', 'blank', '--yes', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/create\s+create \(0755\)/);
    expect(r.stdout).toMatch(/dry run/);
    expect(fs.readdirSync(parent)).toEqual([]);
  });

  it('--json prints exactly one JSON document describing the files', async () => {
    const r = await newOs(['myos', '--template', 'blank', '--yes', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.applied).toBe(true);
    expect(doc.root).toBe(path.join(parent, 'myos'));
    const ops = Object.fromEntries(doc.operations.map((o: { path: string }) => [o.path, o]));
    expect(ops['create']).toMatchObject({ action: 'create', mode: '0755', owner: 'tool' });
    expect(ops['defaults.conf']).toMatchObject({ action: 'create', mode: '0644', owner: 'user' });
    expect(ops['create'].sha256).toBe(sha256(fs.readFileSync(path.join(parent, 'myos', 'create'))));
  });

  it('--json --dry-run says nothing was applied', async () => {
    const r = await newOs(['myos', '--template', 'blank', '--yes', '--json', '--dry-run']);
    expect(JSON.parse(r.stdout).applied).toBe(false);
    expect(fs.readdirSync(parent)).toEqual([]);
  });
});

describe('new: bad input is refused, naming the problem, and leaves the disk as it was', () => {
  it.each([
    [['../x'], 2, /invalid OS name '\.\.\/x'/],
    [['a.b'], 2, /invalid OS name 'a\.b'/],
    [['with space'], 2, /invalid OS name 'with space'/],
    [[''], 2, /OS name is empty/],
    [['ok', '--api', '5'], 2, /API version 5 .*Ganeti 1\.2/],
    [['ok', '--api', '25'], 2, /invalid API version '25'/],
    [['ok', '--api', '20,,15'], 2, /invalid --api/],
    [['ok', '--api', 'twenty'], 2, /invalid API version 'twenty'/],
    [['ok', '--api', '10', '--variant', 'x'], 2, /variants need API 15 or 20/],
    [['ok', '--api', '15', '--param', 'size=Size'], 2, /parameters need API 20/],
    [['ok', '--variant', 'a/b'], 2, /invalid variant name 'a\/b'/],
    [['ok', '--variant', 'a+b'], 2, /invalid variant name 'a\+b'/],
    [['ok', '--variant', 'x', '--variant', 'x'], 2, /variant 'x' is given twice/],
    [['ok', '--param', 'Size=Big'], 2, /invalid parameter name 'Size'/],
    [['ok', '--param', 'no_swap=x'], 2, /invalid parameter name 'no_swap'.*no_/],
    [['ok', '--param', '-x=y'], 2, /invalid parameter name '-x'/],
    [['ok', '--param', 'a,b=y'], 2, /invalid parameter name 'a,b'/],
    [['ok', '--param', 'size'], 2, /invalid --param 'size': expected name=description/],
    [['ok', '--param', 'size='], 2, /needs a description/],
    [['ok', '--template', 'nope'], 2, /unknown template 'nope'/],
    [['ok', '--bogus'], 2, /unknown option '--bogus'/],
  ])('new %j → exit %i', async (args, code, message) => {
    const before = snapshotTree(parent);
    const r = await newOs([...(args as string[]), '--yes']);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message as RegExp);
    expect(snapshotTree(parent)).toEqual(before);
  });

  it('refuses an existing target without --force and changes nothing', async () => {
    fs.mkdirSync(path.join(parent, 'myos'));
    fs.writeFileSync(path.join(parent, 'myos', 'create'), 'mine\n');
    const before = snapshotTree(parent);
    const r = await newOs(['myos', '--template', 'blank', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already exists/);
    expect(r.stderr).toMatch(/--force/);
    expect(snapshotTree(parent)).toEqual(before);
  });

  it('refuses a target that is a file', async () => {
    fs.writeFileSync(path.join(parent, 'myos'), 'x');
    const r = await newOs(['myos', '--template', 'blank', '--yes', '--force']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not a directory/);
    expect(fs.readFileSync(path.join(parent, 'myos'), 'utf8')).toBe('x');
  });

  it('refuses a parent that does not exist or cannot be written', async () => {
    let r = await newOs(['myos', '--template', 'blank', '--yes', '-C', path.join(parent, 'missing')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not exist/);
    expect(fs.existsSync(path.join(parent, 'missing'))).toBe(false);
    // /proc refuses new directories even to root.
    r = await newOs(['myos', '--template', 'blank', '--yes', '-C', '/proc']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot write in \/proc/);
    if (process.getuid?.() !== 0) {
      const ro = path.join(parent, 'ro');
      fs.mkdirSync(ro, { mode: 0o555 });
      r = await newOs(['myos', '--template', 'blank', '--yes', '-C', ro]);
      expect(r.code).toBe(1);
      expect(fs.readdirSync(ro)).toEqual([]);
    }
  });

  it('with --force writes only the files of the plan', async () => {
    const root = path.join(parent, 'myos');
    fs.mkdirSync(root);
    fs.writeFileSync(path.join(root, 'notes.txt'), 'keep me\n');
    fs.writeFileSync(path.join(root, 'create'), 'old\n', { mode: 0o600 });
    const r = await newOs(['myos', '--template', 'blank', '--yes', '--force']);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(root, 'notes.txt'), 'utf8')).toBe('keep me\n');
    expect(fs.readFileSync(path.join(root, 'create'), 'utf8')).toMatch(/^#!\/bin\/bash/);
    expect(fs.statSync(path.join(root, 'create')).mode & 0o777).toBe(0o755);
    expect(fs.readdirSync(root).filter((n) => n.includes('ganeti-os-'))).toEqual([]);
  });
});

describe('new: questions', () => {
  it('asks on a terminal for what was not given', async () => {
    const prompter = scriptedPrompter(['blank', [20, 15], 'bullseye, bookworm', 'root-size', 'Size of /', '']);
    const r = await newOs(['myos'], { interactive: true, prompter });
    expect(r.code).toBe(0);
    expect(prompter.asked).toHaveLength(6);
    const root = path.join(parent, 'myos');
    expect(fs.readFileSync(path.join(root, 'ganeti_api_version'), 'utf8')).toBe('20\n15\n');
    expect(fs.readFileSync(path.join(root, 'variants.list'), 'utf8')).toMatch(/\nbullseye\nbookworm\n$/);
    expect(fs.readFileSync(path.join(root, 'parameters.list'), 'utf8')).toBe('root-size Size of /\n');
  });

  it('asks nothing that a flag answered', async () => {
    const prompter = scriptedPrompter([]);
    const r = await newOs(['myos', '--template', 'blank', '--api', '15', '--variant', 'v'], { interactive: true, prompter });
    expect(r.code).toBe(0);
    expect(prompter.asked).toEqual([]);
  });

  it('never asks with --yes or without a terminal', async () => {
    for (const extra of [{ interactive: true, args: ['--yes'] }, { interactive: false, args: [] }]) {
      const prompter = scriptedPrompter([]);
      const name = `os${extra.args.length}`;
      const r = await newOs([name, '--template', 'blank', ...extra.args], { interactive: extra.interactive, prompter });
      expect(r.code).toBe(0);
      expect(prompter.asked).toEqual([]);
    }
  });

  it('exits 130 and writes nothing when a prompt is cancelled', async () => {
    const { CancelledError } = await import('../src/errors');
    const prompter = scriptedPrompter([]);
    prompter.select = () => Promise.reject(new CancelledError());
    const r = await newOs(['myos'], { interactive: true, prompter });
    expect(r.code).toBe(130);
    expect(fs.readdirSync(parent)).toEqual([]);
  });
});

describeSystem('new: generated shell', { commands: ['shellcheck'] }, () => {
  it.each(['20,15,10', '10'])('API %s: shellcheck reports nothing, from any directory, with and without -x', async (api) => {
    const r = await newOs(['myos', '--template', 'blank', '--api', api, '--yes']);
    expect(r.code).toBe(0);
    const root = path.join(parent, 'myos');
    const files = snapshotTree(root)
      .filter((e) => e.type === 'file' && (/^(create|import|export|rename|verify)$/.test(e.path) || e.path.endsWith('.sh') || e.path.endsWith('.conf')))
      .map((e) => e.path);
    for (const args of [['-x'], []]) {
      const inside = spawnSync('shellcheck', [...args, ...files], { cwd: root, encoding: 'utf8' });
      expect(inside.stdout + inside.stderr).toBe('');
      expect(inside.status).toBe(0);
      const outside = spawnSync('shellcheck', [...args, ...files.map((f) => path.join(root, f))], { cwd: '/', encoding: 'utf8' });
      expect(outside.stdout + outside.stderr).toBe('');
    }
  });
});
