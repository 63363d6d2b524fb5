/**
 * `ganeti-os __complete --shell SHELL -- LINE` (hidden): what the completion scripts of
 * `ganeti-os completion` call for each Tab. Prints a directive line, then one candidate per line:
 *   :words    the candidates given (bash: only the part after the last '=' or ':' of the word,
 *             which bash completes on its own);
 *   :nospace  the same, no space after (`--osparam filesystem=`: a value follows);
 *   :files / :dirs   let the shell complete file or directory names.
 * zsh gets "value:description" lines, fish "value<TAB>description"; bash values only.
 * Candidates come from the commands' own definitions (src/cli.ts), the templates, and the
 * definition the command line names (--os-dir) or the one in or above the current directory:
 * its variants, parameters and their choices. Reads a few small files; never fails loudly
 * (a Tab must not print errors).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CommandSpec, OptionSpec } from '../cli';
import type { Context } from '../context';
import { PROVENANCE_FILE, parseProvenance, provenanceProblem } from '../definition/provenance';
import { findDefinitionDir } from './definition-dir';

export interface CompleteOptions {
  shell?: string;
  /** The command line up to the cursor, the program's name included. */
  line: string;
  program: CommandSpec;
}

export interface Candidate {
  value: string;
  description?: string;
}

export interface Completion {
  directive: ':words' | ':nospace' | ':files' | ':dirs';
  candidates: Candidate[];
}

/** What completion reads from outside the command line. */
export interface CompletionSources {
  templates(): Candidate[];
  /** The definition in `osDir` (or found from the current directory): its variants and parameters. */
  definition(osDir?: string): { variants: string[]; parameters: { name: string; description: string; choices?: string[] }[] } | undefined;
}

export async function runComplete(ctx: Context, opts: CompleteOptions): Promise<void> {
  // The words after the program's name (the last one of them: `sudo ganeti-os`, `x && ganeti-os`).
  const all = splitLine(opts.line);
  let start = -1;
  all.slice(0, -1).forEach((w, i) => {
    if (/(^|\/)ganeti-os(\.js)?$/.test(w)) start = i;
  });
  const args = all.slice(start + 1);
  let r: Completion;
  try {
    r = complete(opts.program, args, fileSources(ctx.cwd));
  } catch {
    r = { directive: ':files', candidates: [] };
  }
  const shell = opts.shell ?? 'bash';
  const cur = args[args.length - 1] ?? '';
  const lines = r.candidates.map((c) => {
    if (shell === 'fish') return c.description ? `${c.value}\t${oneLine(c.description)}` : c.value;
    if (shell === 'zsh') return c.description ? `${c.value.replace(/:/g, '\\:')}:${oneLine(c.description)}` : c.value.replace(/:/g, '\\:');
    return bashWord(c.value, cur);
  });
  ctx.out.write([r.directive, ...lines].join('\n') + '\n');
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').slice(0, 120);

/** bash completes the part of a word after its last COMP_WORDBREAKS character ('=' or ':' here). */
function bashWord(value: string, cur: string): string {
  const cut = Math.max(cur.lastIndexOf('='), cur.lastIndexOf(':'));
  return cut >= 0 && value.startsWith(cur.slice(0, cut + 1)) ? value.slice(cut + 1) : value;
}

/**
 * The words of a command line as a shell splits them (blanks; '…', "…" and backslash quoting),
 * the last being the word under the cursor ('' after a blank).
 */
export function splitLine(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: '"' | "'" | undefined;
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  words.push(cur);
  return words;
}

const DIR_OPTIONS = new Set(['--os-dir', '--directory', '--work-dir', '--log-dir', '--state']);
const FILE_OPTIONS = new Set(['--disk', '--input']);
const SCRIPTS = ['create', 'import', 'export', 'rename', 'verify'];
const words = (values: string[], description?: string): Candidate[] => values.map((value) => ({ value, ...(description ? { description } : {}) }));

/**
 * The candidates for the word under the cursor: `words` are the command line after the
 * program's name, the last one being that word. Pure but for `sources`.
 */
export function complete(program: CommandSpec, args: string[], sources: CompletionSources): Completion {
  const cur = args[args.length - 1] ?? '';
  const done = args.slice(0, -1);
  let cmd = program;
  let positional = 0;
  let dashDash = false;
  let pending: OptionSpec | undefined;
  const given = new Map<string, string | true>();
  const find = (name: string) => cmd.options.find((o) => o.long === name || o.short === name);
  for (const w of done) {
    if (pending) {
      given.set(pending.long ?? pending.short!, w);
      pending = undefined;
    } else if (dashDash) positional++;
    else if (w === '--') dashDash = true;
    else if (w.startsWith('-') && w.length > 1) {
      const eq = w.indexOf('=');
      const o = find(eq > 0 ? w.slice(0, eq) : w);
      if (!o) continue;
      if (eq > 0) given.set(o.long ?? o.short!, w.slice(eq + 1));
      else if (o.value) pending = o;
      else given.set(o.long ?? o.short!, true);
    } else {
      const sub = positional === 0 ? cmd.commands.find((c) => c.name === w && !c.hidden) : undefined;
      if (sub) cmd = sub;
      else positional++;
    }
  }
  const osDir = typeof given.get('--os-dir') === 'string' ? (given.get('--os-dir') as string) : undefined;
  const filter = (c: Completion): Completion => ({ ...c, candidates: c.candidates.filter((x) => x.value.startsWith(c.directive === ':files' || c.directive === ':dirs' ? '' : cur)) });

  if (pending) return filter(optionValues(cmd, pending, '', cur, osDir, sources));
  if (!dashDash && cur.startsWith('--') && cur.includes('=')) {
    const eq = cur.indexOf('=');
    const o = find(cur.slice(0, eq));
    if (!o?.value) return { directive: ':words', candidates: [] };
    const r = optionValues(cmd, o, `${cur.slice(0, eq)}=`, cur.slice(eq + 1), osDir, sources);
    return filter(r);
  }
  if (!dashDash && cur.startsWith('-')) {
    const options = cmd.options.filter((o) => o.long && (o.repeatable || !given.has(o.long)));
    return filter({ directive: ':words', candidates: options.map((o) => ({ value: o.long!, description: o.description })) });
  }
  if (!dashDash && positional === 0 && cmd.commands.some((c) => !c.hidden)) {
    return filter({ directive: ':words', candidates: cmd.commands.filter((c) => !c.hidden).map((c) => ({ value: c.name, description: c.description })) });
  }
  return filter(argumentValues(cmd, positional, osDir, sources));
}

function optionValues(cmd: CommandSpec, o: OptionSpec, prefix: string, cur: string, osDir: string | undefined, sources: CompletionSources): Completion {
  const name = o.long ?? '';
  const pre = (c: Candidate[]): Candidate[] => c.map((x) => ({ ...x, value: prefix + x.value }));
  if (DIR_OPTIONS.has(name) || (name === '--output' && cmd.name === 'pack')) return { directive: ':dirs', candidates: [] };
  if (FILE_OPTIONS.has(name) || name === '--output') return { directive: ':files', candidates: [] };
  switch (name) {
    case '--template':
    case '--from':
      // A site template is a directory (./site, /srv/..., ~/...) or git+URL: let the shell complete paths.
      if (name === '--template' && /^[./~]/.test(cur)) return { directive: ':dirs', candidates: [] };
      return { directive: ':words', candidates: pre(sources.templates()) };
    case '--ganeti': {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { GANETI_RELEASES } = require('../ganeti/releases') as typeof import('../ganeti/releases');
      return { directive: ':words', candidates: pre(GANETI_RELEASES.map((r) => ({ value: r.release, description: `Ganeti ${r.release} (Debian ${r.debianSuite})` }))) };
    }
    case '--variant':
      return { directive: ':words', candidates: pre(words(cmd.name === 'new' ? [] : (sources.definition(osDir)?.variants ?? []))) };
    case '--api':
      return { directive: ':words', candidates: pre(words(['20,15,10', '20,15', '20', '15,10', '15', '10'])) };
    case '--hypervisor': {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { GANETI_DEFAULTS } = require('../ganeti/defaults') as typeof import('../ganeti/defaults');
      return { directive: ':words', candidates: pre(words(GANETI_DEFAULTS.hypervisors)) };
    }
    case '--file-driver': {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { GANETI_DEFAULTS } = require('../ganeti/defaults') as typeof import('../ganeti/defaults');
      return { directive: ':words', candidates: pre(words(GANETI_DEFAULTS.fileDrivers)) };
    }
    case '--disk-template':
      return { directive: ':words', candidates: pre(words(cmd.name === 'run' ? ['file', 'plain', 'sharedfile'] : ['file', 'ext'])) };
    case '--accel':
      return { directive: ':words', candidates: pre(words(['tcg', 'kvm'])) };
    case '--osparam':
    case '--osparam-private':
    case '--bad-osparam':
      return osparamValues(prefix, cur, osDir, sources);
    default:
      return { directive: ':words', candidates: [] };
  }
}

/** `name=` for each declared parameter; after `name=`, its choices. */
function osparamValues(prefix: string, cur: string, osDir: string | undefined, sources: CompletionSources): Completion {
  const params = sources.definition(osDir)?.parameters ?? [];
  const eq = cur.indexOf('=');
  if (eq < 0) return { directive: ':nospace', candidates: params.map((p) => ({ value: `${prefix}${p.name}=`, description: p.description })) };
  const p = params.find((x) => x.name === cur.slice(0, eq));
  return { directive: ':words', candidates: words((p?.choices ?? []).map((c) => `${prefix}${p!.name}=${c}`)) };
}

function argumentValues(cmd: CommandSpec, index: number, osDir: string | undefined, sources: CompletionSources): Completion {
  const a = cmd.arguments[Math.min(index, cmd.arguments.length - 1)];
  if (!a || (index >= cmd.arguments.length && !a.variadic)) return { directive: ':words', candidates: [] };
  const key = `${cmd.path.slice(1).join(' ')} ${a.name}`;
  const def = () => sources.definition(osDir);
  switch (key) {
    case 'info dir':
    case 'validate dir':
    case 'diagnose search-dir':
    case 'template init dir':
    case 'template check source':
      return { directive: ':dirs', candidates: [] };
    case 'remove-variant variant':
      return { directive: ':words', candidates: words(def()?.variants ?? []) };
    case 'remove-param name':
      return { directive: ':words', candidates: (def()?.parameters ?? []).map((p) => ({ value: p.name, description: p.description })) };
    case 'bump-api version':
      return { directive: ':words', candidates: words(['20', '15', '10']) };
    case 'run script':
      return { directive: ':words', candidates: words(SCRIPTS) };
    case 'completion shell': {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { COMPLETION_SHELLS } = require('../cli') as typeof import('../cli');
      return { directive: ':words', candidates: words(COMPLETION_SHELLS) };
    }
    case 'rollout package':
    case 'cluster exec command':
      return { directive: ':files', candidates: [] };
    default:
      return { directive: ':words', candidates: [] };
  }
}

/** The real sources: the templates ganeti-os ships, and the definition's lists and record. */
export function fileSources(cwd: string): CompletionSources {
  return {
    templates: () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { listTemplates } = require('../definition/templates') as typeof import('../definition/templates');
      return listTemplates().map((t) => ({ value: t.name, description: t.summary }));
    },
    definition: (osDir) => {
      const dir = osDir !== undefined ? path.resolve(cwd, osDir) : findDefinitionDir(cwd);
      if (!dir) return undefined;
      const read = (f: string) => {
        try {
          return fs.readFileSync(path.join(dir, f), 'utf8');
        } catch {
          return '';
        }
      };
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { parseVariantsList, parseParametersList } = require('../ganeti/rules') as typeof import('../ganeti/rules');
      // Not written by ganeti-os, or a record with a wrong field: no choices known.
      const record = parseProvenance(read(PROVENANCE_FILE));
      const recorded = record && provenanceProblem(record) === undefined ? record.answers.parameters : [];
      return {
        variants: [...new Set(parseVariantsList(read('variants.list')))],
        parameters: parseParametersList(read('parameters.list'))
          .filter((l) => l.fields.length > 0)
          .map((l) => ({ name: l.fields[0], description: l.fields[1] ?? '', choices: recorded.find((r) => r.name === l.fields[0])?.choices })),
      };
    },
  };
}
