/**
 * The syntax checks of validate (src/definition/shell-syntax.ts): one bash process for every
 * bash file of a clean definition (bash --pretty-print), nothing in them run, and exactly what
 * `bash -n FILE` / `sh -n FILE` say of each file alone, however the files are broken.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shellSyntaxErrors } from '../src/definition/shell-syntax';
import { REPO, tempDir } from './helpers/cli';

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const GOOD: Record<string, string> = {
  'a.sh': 'f() {\n  echo "$1"\n}\nf x\n',
  'empty.sh': '',
  'no-newline.sh': 'echo last line without a newline',
  'heredoc.sh': 'cat <<EOF\n}\n$(echo in heredoc)\nEOF\necho after\n',
  'case.sh': 'case $1 in\n  a) echo a ;;\n  *) : ;;\nesac\n',
  'defaults.conf': '# settings\nSUITE=bookworm\nEXTRA="a b"\n',
};

/** What the shells say of each file alone: the oracle. */
function oracle(files: Map<string, 'bash' | 'sh'>): { rel: string; shell: string; message: string }[] {
  const out: { rel: string; shell: string; message: string }[] = [];
  for (const [rel, shell] of files) {
    const r = spawnSync(shell, ['-n', rel], { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) out.push({ rel, shell, message: r.stderr });
  }
  return out;
}

function write(files: Record<string, string>, shell: (rel: string) => 'bash' | 'sh' = () => 'bash'): Map<string, 'bash' | 'sh'> {
  const m = new Map<string, 'bash' | 'sh'>();
  for (const [rel, text] of Object.entries(files)) {
    fs.writeFileSync(path.join(dir, rel), text);
    m.set(rel, shell(rel));
  }
  return m;
}

/**
 * The built checker (dist/, as the CLI runs it) in a process of its own whose PATH has a bash
 * and an sh that count their starts (the same two for every call in a test), and whose cache
 * is the test's own: its findings and how many shells it started.
 */
function counting(files: Map<string, 'bash' | 'sh'>, env: Record<string, string> = {}): { result: unknown; bash: number; sh: number } {
  const bin = path.join(dir, '.bin');
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(bin);
    for (const s of ['bash', 'sh']) {
      const real = spawnSync('sh', ['-c', `command -v ${s}`], { encoding: 'utf8' }).stdout.trim();
      fs.writeFileSync(path.join(bin, s), `#!${real}\necho >> ${path.join(bin, `${s}.count`)}\nexec ${real} "$@"\n`, { mode: 0o755 });
    }
  }
  for (const s of ['bash', 'sh']) fs.rmSync(path.join(bin, `${s}.count`), { force: true });
  const code = `const { shellSyntaxErrors } = require(${JSON.stringify(path.join(REPO, 'dist', 'definition', 'shell-syntax.js'))});
process.stdout.write(JSON.stringify(shellSyntaxErrors(process.argv[1], new Map(JSON.parse(process.argv[2])))));`;
  const r = spawnSync(process.execPath, ['-e', code, dir, JSON.stringify([...files])], {
    encoding: 'utf8',
    env: { PATH: `${bin}:${process.env.PATH}`, HOME: dir, XDG_CACHE_HOME: path.join(dir, '.cache'), ...env },
  });
  if (r.status !== 0) throw new Error(r.stderr);
  const n = (s: string) => (fs.existsSync(path.join(bin, `${s}.count`)) ? fs.readFileSync(path.join(bin, `${s}.count`), 'utf8').length : 0);
  return { result: JSON.parse(r.stdout), bash: n('bash'), sh: n('sh') };
}

describe('shell syntax checks', () => {
  it('a clean set of files: no finding, one bash process for all of them', () => {
    const files = write(GOOD);
    expect(oracle(files)).toEqual([]);
    const r = counting(files);
    expect(r.result).toEqual([]);
    expect(r.bash).toBe(1);
  });

  it.each([
    ['one file broken in the middle', { 'b.sh': 'if true; then\n  echo x\n' }],
    ['two broken files, before and after clean ones', { '0.sh': 'done\n', 'z.sh': 'echo $((\n' }],
    ['an open quote running into the next files', { 'q.sh': 'echo "open\n', 'r.sh': 'echo fine\n' }],
    ['an open heredoc at the end of a file', { 'h.sh': 'cat <<EOF\nnever closed\n' }],
    ['a brace closed too early', { 'x.sh': 'f() { :; }\n}\n' }],
    ['two open quotes that would pair up across files', { 'p1.conf': 'X="unterminated\n', 'p2.conf': 'Y="unterminated\n' }],
  ])('%s: exactly what bash -n says of each file alone', (_name, broken) => {
    const files = write({ ...GOOD, ...broken });
    expect(shellSyntaxErrors(dir, files)).toEqual(oracle(files));
  });

  it('runs nothing of the files it reads, whatever they try', () => {
    const marker = path.join(dir, 'ran');
    const files = write({
      'run.sh': `touch ${marker}\n`,
      'escape.sh': `set +n\ntouch ${marker}\n`,
      'closes.sh': `}\ntouch ${marker}\n__x() {\n`,
      'subst.sh': `X=$(touch ${marker})\n`,
    });
    const r = counting(files);
    expect(fs.existsSync(marker)).toBe(false);
    expect(r.result).toEqual(oracle(files));
  });

  it('sh files are checked by sh, bash files by bash, errors in the order of the files', () => {
    const files = write({ 'p.sh': 'echo ok\n', 'bashism.sh': 'a=( 1 2 )\n', 'c.sh': 'if\n', 'd.sh': '[[ -n x ]] && echo y\n' }, (rel) => (rel === 'bashism.sh' || rel === 'p.sh' ? 'sh' : 'bash'));
    const want = oracle(files);
    expect(want.map((w) => w.rel)).toEqual(expect.arrayContaining(['c.sh']));
    expect(shellSyntaxErrors(dir, files)).toEqual(want);
  });

  describe('a clean parse is remembered (the user\'s cache), and only what bash would say again', () => {
    const cached = () => fs.readdirSync(path.join(dir, '.cache', 'ganeti-os', 'bash-parses'));

    it('the same files again: no bash at all, the same (empty) findings', () => {
      const files = write(GOOD);
      expect(counting(files)).toEqual({ result: [], bash: 1, sh: 0 });
      expect(cached()).toHaveLength(1);
      expect(counting(files)).toEqual({ result: [], bash: 0, sh: 0 });
    });

    it('one byte changed in one file: asked again', () => {
      const files = write(GOOD);
      expect(counting(files).bash).toBe(1);
      fs.appendFileSync(path.join(dir, 'case.sh'), '# more\n');
      expect(counting(files)).toEqual({ result: [], bash: 1, sh: 0 });
      expect(cached()).toHaveLength(2);
    });

    it('a file that does not parse is never remembered: every run asks the shells, with their messages', () => {
      const files = write({ ...GOOD, 'b.sh': 'if true; then\n  echo x\n' });
      const want = oracle(files);
      expect(want).toHaveLength(1);
      for (let i = 0; i < 2; i++) {
        const r = counting(files);
        expect(r.result).toEqual(want);
        expect(r.bash).toBeGreaterThanOrEqual(1);
      }
      const parses = path.join(dir, '.cache', 'ganeti-os', 'bash-parses');
      expect(fs.existsSync(parses) ? fs.readdirSync(parses) : []).toEqual([]);
    });

    it("a verdict in a cache another user owns (root with a user's HOME, as sudo -E leaves it) is not believed", () => {
      if (process.getuid?.() !== 0) return; // chown needs root; the mode case below needs no one
      const files = write(GOOD);
      expect(counting(files).bash).toBe(1);
      expect(counting(files).bash).toBe(0);
      // The same marker, now in directories of another user's (who could have planted it).
      const parses = path.join(dir, '.cache', 'ganeti-os', 'bash-parses');
      for (const d of [path.join(dir, '.cache'), path.join(dir, '.cache', 'ganeti-os'), parses]) fs.chownSync(d, 65534, 65534);
      expect(counting(files)).toEqual({ result: [], bash: 1, sh: 0 });
      expect(counting(files)).toEqual({ result: [], bash: 1, sh: 0 });
    });

    it('a cache directory others may write is not used: the shells are asked every time', () => {
      const files = write(GOOD);
      expect(counting(files).bash).toBe(1);
      fs.chmodSync(path.join(dir, '.cache', 'ganeti-os', 'bash-parses'), 0o777);
      expect(counting(files).bash).toBe(1);
      expect(counting(files).bash).toBe(1);
    });

    it('another bash (the same path, changed: an upgrade) is asked again', () => {
      const files = write(GOOD);
      expect(counting(files).bash).toBe(1);
      const fake = path.join(dir, '.bin', 'bash');
      fs.writeFileSync(fake, fs.readFileSync(fake, 'utf8') + '# upgraded\n');
      expect(counting(files).bash).toBe(1);
      expect(counting(files).bash).toBe(0);
    });

    it('what bash reads at start-up that changes parsing is part of the key; with BASH_ENV nothing is remembered', () => {
      const files = write(GOOD);
      expect(counting(files).bash).toBe(1);
      expect(counting(files, { LC_ALL: 'C.UTF-8' }).bash).toBe(1);
      expect(counting(files, { LC_ALL: 'C.UTF-8' }).bash).toBe(0);
      const bashEnv = path.join(dir, 'bash-env');
      fs.writeFileSync(bashEnv, 'shopt -s extglob\n');
      expect(counting(files, { BASH_ENV: bashEnv }).bash).toBe(1);
      expect(counting(files, { BASH_ENV: bashEnv }).bash).toBe(1);
    });

    it('a cache that cannot be written is no cache: the same findings, bash every time', () => {
      const files = write(GOOD);
      fs.writeFileSync(path.join(dir, '.cache'), 'a file where the cache directory would be\n');
      expect(counting(files)).toEqual({ result: [], bash: 1, sh: 0 });
      expect(counting(files)).toEqual({ result: [], bash: 1, sh: 0 });
    });
  });
});
