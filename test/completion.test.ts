/**
 * `ganeti-os completion bash`, driven for real: bash sources the script, COMP_WORDS, COMP_CWORD,
 * COMP_LINE and COMP_POINT are set as readline sets them (words split at '=' too), the
 * completion function runs and COMPREPLY is read back. The script calls the built CLI through
 * a `ganeti-os` on PATH.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildProgram, describeProgram } from '../src/cli';
import { listTemplates } from '../src/definition/templates';
import { BIN, cli, runCli, tempDir } from './helpers/cli';

/** The definition's variants, as its variants.list lists them (completion offers them in that order). */
const variantsOf = (dir: string): string[] =>
  fs.readFileSync(path.join(dir, 'variants.list'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

let work: string;
let binDir: string;
let def: string;
beforeAll(async () => {
  work = tempDir();
  binDir = path.join(work, 'bin');
  fs.mkdirSync(binDir);
  fs.symlinkSync(BIN, path.join(binDir, 'ganeti-os'));
  const r = await cli(work, ['new', 'web-os', '--template', 'debian', '--yes']);
  if (r.code !== 0) throw new Error(r.stderr);
  def = path.join(work, 'web-os');
  fs.mkdirSync(path.join(work, 'a-dir'));
  fs.writeFileSync(path.join(work, 'a-file'), '');
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const script = () => runCli(['completion', 'bash']).stdout;

/**
 * COMPREPLY for the command line `line` (the cursor at its end), in `cwd`. `words` are COMP_WORDS
 * as bash splits them (blanks, and '=' and ':' as words of their own).
 */
function complete(line: string, words: string[], cwd = work): string[] {
  const prog = `source /dev/stdin <<<"$SCRIPT"
COMP_LINE=$LINE; COMP_POINT=\${#COMP_LINE}
eval "COMP_WORDS=($WORDS)"; COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
_ganeti_os
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', prog], {
    cwd,
    encoding: 'utf8',
    // No code cache (~/.cache/ganeti-os/v8): HOME is the directory whose entries are completed.
    env: { PATH: `${binDir}:${process.env.PATH}`, HOME: work, GANETI_OS_NO_CACHE: '1', SCRIPT: script(), LINE: line, WORDS: quoted },
  });
  if (r.status !== 0) throw new Error(`bash: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

const visible = describeProgram(buildProgram('0', async () => undefined)).commands.filter((c) => !c.hidden);

describe('bash completion', () => {
  it('completes command names, hidden ones excepted', () => {
    expect(complete('ganeti-os ', ['ganeti-os', ''])).toEqual(visible.map((c) => c.name));
    expect(complete('ganeti-os n', ['ganeti-os', 'n'])).toEqual(['new', 'nodes-check']);
    expect(complete('ganeti-os re', ['ganeti-os', 're']).sort()).toEqual(['remove-param', 'remove-variant']);
    expect(complete('ganeti-os cluster ', ['ganeti-os', 'cluster', ''])).toEqual(['up', 'down', 'status', 'exec']);
    expect(complete('ganeti-os template ', ['ganeti-os', 'template', ''])).toEqual(['init', 'check']);
  });

  it("completes each command's options from its definition, once each unless repeatable", () => {
    const validate = visible.find((c) => c.name === 'validate')!;
    expect(complete('ganeti-os validate --', ['ganeti-os', 'validate', '--'])).toEqual(validate.options.map((o) => o.long));
    expect(complete('ganeti-os validate --s', ['ganeti-os', 'validate', '--s'])).toEqual(['--strict', '--shellcheck']);
    expect(complete('ganeti-os validate --strict --s', ['ganeti-os', 'validate', '--strict', '--s'])).toEqual(['--shellcheck']);
    expect(complete('ganeti-os new x --variant a --v', ['ganeti-os', 'new', 'x', '--variant', 'a', '--v'])).toEqual(['--variant']);
    // An option added to a command's definition is offered with nothing else to change (test --cluster --burnin).
    expect(complete('ganeti-os test --cluster --bu', ['ganeti-os', 'test', '--cluster', '--bu'])).toEqual(['--burnin']);
  });

  it('completes template names and fixed values', () => {
    expect(complete('ganeti-os new x --template ', ['ganeti-os', 'new', 'x', '--template', ''])).toEqual(listTemplates().map((t) => t.name));
    expect(complete('ganeti-os new x --template=b', ['ganeti-os', 'new', 'x', '--template', '=', 'b'])).toEqual(['blank']);
    expect(complete('ganeti-os template init dir --from ', ['ganeti-os', 'template', 'init', 'dir', '--from', ''])).toEqual(listTemplates().map((t) => t.name));
    expect(complete('ganeti-os run ', ['ganeti-os', 'run', '']).sort()).toEqual(['create', 'export', 'import', 'rename', 'verify']);
    expect(complete('ganeti-os bump-api ', ['ganeti-os', 'bump-api', ''])).toEqual(['20', '15', '10']);
    expect(complete('ganeti-os completion ', ['ganeti-os', 'completion', ''])).toEqual(['bash', 'zsh', 'fish']);
    expect(complete('ganeti-os validate --ganeti ', ['ganeti-os', 'validate', '--ganeti', ''])).toEqual(['3.0', '3.1']);
    expect(complete('ganeti-os cluster up --ganeti 3.', ['ganeti-os', 'cluster', 'up', '--ganeti', '3.'])).toEqual(['3.0', '3.1']);
  });

  it('completes a site template as a directory when the value is a path', () => {
    expect(complete('ganeti-os new x --template ./a', ['ganeti-os', 'new', 'x', '--template', './a'])).toEqual(['./a-dir']);
    expect(complete('ganeti-os new x --template ./w', ['ganeti-os', 'new', 'x', '--template', './w'])).toEqual(['./web-os']);
  });

  it("inside a definition (from a subdirectory too): its variants, parameters and their choices", () => {
    const lib = path.join(def, 'lib');
    const lines = (f: string) => fs.readFileSync(path.join(def, f), 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    const variants = lines('variants.list');
    const params = lines('parameters.list').map((l) => l.split(/\s+/)[0]);
    expect(complete('ganeti-os remove-variant ', ['ganeti-os', 'remove-variant', ''], lib)).toEqual(variants);
    expect(complete('ganeti-os test --variant ', ['ganeti-os', 'test', '--variant', ''], def)).toEqual(variants);
    expect(complete('ganeti-os remove-param ', ['ganeti-os', 'remove-param', ''], lib)).toEqual(params);
    expect(complete('ganeti-os run create --osparam ', ['ganeti-os', 'run', 'create', '--osparam', ''], def)).toEqual(params.map((p) => `${p}=`));
    const fsChoices = JSON.parse(fs.readFileSync(path.join(def, '.ganeti-os.json'), 'utf8')).answers.parameters.find((p: { name: string }) => p.name === 'filesystem').choices;
    expect(complete('ganeti-os run create --osparam filesystem=', ['ganeti-os', 'run', 'create', '--osparam', 'filesystem', '='], def)).toEqual(fsChoices);
    expect(complete('ganeti-os run create --osparam filesystem=ext', ['ganeti-os', 'run', 'create', '--osparam', 'filesystem', '=', 'ext'], def)).toEqual(fsChoices.filter((c: string) => c.startsWith('ext')));
  });

  it('names a definition elsewhere with --os-dir; outside any, offers no variants', () => {
    expect(complete('ganeti-os remove-variant --os-dir web-os ', ['ganeti-os', 'remove-variant', '--os-dir', 'web-os', ''])).toEqual(variantsOf(def));
    expect(complete('ganeti-os remove-variant ', ['ganeti-os', 'remove-variant', ''])).toEqual([]);
  });

  it('lets bash complete directories and files where a path goes', () => {
    expect(complete('ganeti-os info ', ['ganeti-os', 'info', '']).sort()).toEqual(['a-dir', 'bin', 'web-os']);
    expect(complete('ganeti-os pack --os-dir a', ['ganeti-os', 'pack', '--os-dir', 'a'])).toEqual(['a-dir']);
    expect(complete('ganeti-os rollout a', ['ganeti-os', 'rollout', 'a']).sort()).toEqual(['a-dir', 'a-file']);
  });

  it('refuses a shell it has no script for (exit 2)', () => {
    const r = runCli(['completion', 'tcsh'], { env: { NO_COLOR: '1' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no completion for shell 'tcsh': give one of bash, zsh, fish/);
  });
});
