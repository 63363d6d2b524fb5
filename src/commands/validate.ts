/**
 * `ganeti-os validate [dir...]`: Ganeti's verdict (`--ganeti`) on each directory (backend._TryOSFromDisk,
 * same first error in the same words), then what ganeti-os sees that breaks later. The exit
 * status answers "will instance operations work?": 1 when Ganeti refuses a definition or when
 * it accepts it but an error finding (syntax error in a sourced file, a script the kernel cannot
 * execute, a parameters.list line the node's check crashes on, ...) makes them fail.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Context } from '../context';
import { SilentFailure, UserError } from '../errors';
import { Problem, findProblems } from '../definition/checks';
import { OS_API_V20, OS_SCRIPTS, OS_SCRIPT_CREATE, OS_SCRIPT_CREATE_UNTRUSTED, OS_SCRIPT_VERIFY } from '../ganeti/rules';
import { OsDefinition, readDefinition } from '../definition/model';
import { pyReprStr } from '../ganeti/pyfmt';
import { shellOf, sourcedFiles } from '../definition/script-reading';
import { definitionDir } from './definition-dir';
import { GanetiRelease, chooseRelease, followedText } from '../ganeti/releases';
import { UNRUNNABLE_CODES, firstRunFindings, firstRuns } from '../definition/first-run';
import { onPath, runSync } from '../system/process';

export interface ValidateOptions {
  dirs?: string[];
  /** --os-dir, repeatable: more definition directories, as the arguments. */
  osDir?: string[];
  /** --ganeti: the release whose verdict to give (default: chooseRelease's). */
  ganeti?: string;
  json?: boolean;
  strict?: boolean;
  shellcheck?: boolean;
}

export interface ValidateResult {
  dir: string;
  name: string;
  /** The OS path as Ganeti spells it in its messages. */
  path: string;
  valid: boolean;
  /** Ganeti's error, word for word (null when valid). */
  error: string | null;
  /** Set when Ganeti raises instead of answering (e.g. UnicodeDecodeError). */
  crash: string | null;
  /** The file Ganeti was reading when it raised. */
  crashFile: string | null;
  /** A hint of ours about the error (e.g. "no such directory"); never part of Ganeti's words. */
  note: string | null;
  apiVersions: number[] | null;
  apiVersion: number | null;
  variants: string[];
  parameters: string[][];
  trusted: boolean;
  /**
   * Will instance operations work? False when Ganeti refuses the definition, or accepts it but
   * something in it makes creating, importing, ... an instance fail (`errors`).
   */
  works: boolean;
  /** Findings that make instance operations fail although Ganeti calls the definition valid. */
  errors: Problem[];
  warnings: Problem[];
  /** Worth knowing, never a failure (e.g. an unsupported API version listed beside supported ones). */
  notes: Problem[];
  /**
   * With --shellcheck: ShellCheck's findings counted per file and level (error, warning, info,
   * style). The findings themselves are in `warnings` (error, warning) and `notes` (info, style),
   * each with its `level`.
   */
  shellcheck?: Record<string, Record<string, number>>;
  /** Works and, with --strict, is free of warnings: what the exit status says. */
  passed: boolean;
  /**
   * What _TryOSFromDisk returns, in the words of the test harness: {ok: false, error} or
   * {ok: true, os: objects.OS fields}.
   */
  ganeti: Record<string, unknown>;
}

export async function runValidate(ctx: Context, opts: ValidateOptions): Promise<void> {
  // The OS loader is the same in every supported release (see model.ts): the verdict does not
  // depend on the release, but the output says which one it stands for.
  const followed = chooseRelease(opts.ganeti);
  const given = [...(opts.dirs ?? []), ...(opts.osDir ?? [])];
  const dirs = given.length ? given.map((d) => definitionDir(ctx, d)) : [definitionDir(ctx)];
  const shellcheck = opts.shellcheck ? findShellcheck(ctx) : undefined;
  const results = dirs.map((d) => validateOne(d, { strict: !!opts.strict, shellcheck, release: followed.release, uid: ctx.uid }));
  const ok = results.every((r) => r.passed);
  if (opts.json) {
    ctx.out.write(JSON.stringify({ ok, strict: !!opts.strict, ganeti: followed.release, results }, null, 2) + '\n');
  } else {
    ctx.log.info(`following ${followedText(followed)}`);
    const lines: string[] = [];
    for (const r of results) {
      if (r.valid) {
        const bits = [`API ${r.apiVersions?.join(', ')}`];
        const show = (n: string) => (/^[\x21-\x7e]+$/.test(n) ? n : pyReprStr(n));
        if (r.variants.length) bits.push(`variants: ${r.variants.map(show).join(', ')}`);
        if (r.parameters.length) bits.push(`parameters: ${r.parameters.map((p) => show(p[0] ?? '')).join(', ')}`);
        if (!r.trusted) bits.push('untrusted');
        lines.push(`${r.dir}: valid (${bits.join('; ')})`);
      } else {
        lines.push(`${r.dir}: invalid: ${r.error}`);
        if (r.crash) lines.push(`  (Ganeti raises ${r.crash} reading ${r.crashFile}: the whole OS scan of the node fails and every OS on it disappears)`);
        if (r.note) lines.push(`  (${r.note})`);
      }
      const ours = (p: Problem) => !p.level;
      for (const e of r.errors) lines.push(`  error: ${e.message}`);
      for (const w of r.warnings.filter(ours)) lines.push(`  ${opts.strict ? 'error' : 'warning'}: ${w.message}`);
      for (const n of r.notes.filter(ours)) lines.push(`  note: ${n.message}`);
      // ShellCheck's findings under their own levels, file by file with a count per level.
      for (const [file, counts] of Object.entries(r.shellcheck ?? {})) {
        const fails = (counts.error ?? 0) + (counts.warning ?? 0) > 0;
        const summary = SHELLCHECK_LEVELS.filter((l) => counts[l]).map((l) => `${counts[l]} ${l}`).join(', ');
        lines.push(`  shellcheck ${file}: ${summary}${fails ? (opts.strict ? ' (fails --strict)' : '') : ' (notes only)'}`);
        for (const p of [...r.warnings, ...r.notes].filter((x) => x.level && x.file === file).sort((a, b) => (a.line ?? 0) - (b.line ?? 0))) lines.push(`    ${p.message}`);
      }
      if (r.valid && !r.works) {
        lines.push(`  instance operations will fail: ${r.errors.length} error${r.errors.length === 1 ? '' : 's'} above (Ganeti's verdict alone is "valid")`);
      }
    }
    const bad = results.filter((r) => !r.passed).length;
    if (results.length > 1) lines.push(`${results.length - bad} of ${results.length} passed${opts.strict ? ' (strict)' : ''}`);
    ctx.out.write(lines.join('\n') + '\n');
  }
  if (!ok) throw new SilentFailure();
}

export function validateOne(dir: string, opts: { strict: boolean; shellcheck?: string; release?: GanetiRelease; uid?: number }): ValidateResult {
  const def = readDefinition(dir);
  // Ganeti's own verdict is reported as it is (valid / error), never as a finding of ours.
  const all = findProblems(def).filter((p) => p.code !== 'ganeti' && p.code !== 'ganeti-crash');
  // What Ganeti runs first (verify, or the configuration layers), unless the kernel cannot
  // execute the script that would run (already an error).
  const unrunnable = all.some((p) => UNRUNNABLE_CODES.has(p.code) && (p.file === OS_SCRIPT_VERIFY || p.file === OS_SCRIPT_CREATE));
  all.push(...firstRunFindings(firstRuns(def, { skip: unrunnable, release: opts.release, uid: opts.uid })));
  const errors = all.filter((p) => p.severity === 'error');
  const problems = all.filter((p) => p.severity === 'warning');
  const works = def.verdict.valid && errors.length === 0;
  const shellcheck = opts.shellcheck && def.verdict.valid ? shellcheckProblems(opts.shellcheck, def) : [];
  problems.push(...shellcheck.filter((p) => p.severity === 'warning'));
  const notes = [...all.filter((p) => p.severity === 'info'), ...shellcheck.filter((p) => p.severity === 'info')];
  return {
    dir: def.dir,
    name: def.name,
    path: def.osDir,
    valid: def.verdict.valid,
    error: def.verdict.error ?? null,
    crash: def.verdict.crash ?? null,
    crashFile: def.verdict.crashFile ?? null,
    note: def.verdict.valid ? null : noteFor(dir),
    apiVersions: def.verdict.valid ? (def.apiVersions ?? null) : null,
    apiVersion: def.verdict.valid ? (def.apiVersion ?? null) : null,
    variants: def.variants,
    parameters: def.parameterFields,
    trusted: def.trusted,
    works,
    errors,
    warnings: problems,
    notes,
    ...(opts.shellcheck ? { shellcheck: shellcheckSummary(shellcheck) } : {}),
    passed: works && (!opts.strict || problems.length === 0),
    ganeti: ganetiAnswer(def),
  };
}

function ganetiAnswer(def: OsDefinition): Record<string, unknown> {
  if (!def.verdict.valid) {
    return def.verdict.crash ? { ok: false, error: def.verdict.error, type: def.verdict.crash } : { ok: false, error: def.verdict.error };
  }
  const script = (s: string) => (def.files[s]?.kind === 'file' ? `${def.osDir}/${s}` : null);
  return {
    ok: true,
    os: {
      name: def.name,
      path: def.osDir,
      api_versions: def.apiVersions,
      variants: def.variants,
      parameters: def.parameterFields,
      create_script: script(OS_SCRIPT_CREATE),
      create_script_untrusted: script(OS_SCRIPT_CREATE_UNTRUSTED),
      verify_script: (def.maxApiVersion ?? 0) >= OS_API_V20 ? script(OS_SCRIPT_VERIFY) : null,
    },
  };
}

function noteFor(dir: string): string | null {
  try {
    const st = fs.statSync(dir);
    if (!st.isDirectory()) return `${dir} is not a directory`;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `${dir} does not exist` : `${dir}: ${code}`;
  }
  return null;
}

function findShellcheck(ctx: Context): string {
  const found = onPath('shellcheck', ctx.env.PATH ?? '/usr/bin:/bin');
  if (found) return found;
  throw new UserError('--shellcheck needs shellcheck, which is not installed (Debian: apt-get install shellcheck)');
}

function isShellScript(p: string): boolean {
  let head = '';
  try {
    const fd = fs.openSync(p, 'r');
    try {
      const b = Buffer.alloc(256);
      head = b.subarray(0, fs.readSync(fd, b, 0, 256, 0)).toString('latin1');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
  if (!head.startsWith('#!')) return true;
  const line = head.split('\n')[0];
  return /^#!\s*\S*\/(env\s+)?(sh|bash|dash|ksh|mksh|busybox\s+sh)\b/.test(line) || /^#!\s*\/usr\/bin\/env\s+(-\S+\s+)*(sh|bash|dash|ksh)\b/.test(line);
}

interface ShellcheckComment {
  file: string;
  line: number;
  column: number;
  level: string;
  code: number;
  message: string;
}

/**
 * shellcheck's findings, as warnings, on the definition's shell scripts and on every shell file
 * they run: what they source from the definition (lib/*.sh, a common.sh), lib/*.sh, and the
 * configuration they source (defaults.conf, variants/*.conf) -- in a ganeti-os definition the
 * scripts are short shims and the logic lives in those files. Sourced files have no #! line:
 * they are checked as the shell of the scripts that source them.
 */
function shellcheckProblems(shellcheck: string, def: OsDefinition): Problem[] {
  // Only shell scripts: shellcheck refuses other interpreters (SC1071), which says nothing about them.
  const scripts = OS_SCRIPTS.filter((s) => def.files[s]?.kind === 'file' && isShellScript(def.files[s].path));
  if (!scripts.length) return [];
  const shells = new Set(scripts.map((s) => shellOf(readHead(path.join(def.dir, s)))));
  const shell = shells.size === 1 && shells.has('sh') ? 'sh' : 'bash';
  const isRegular = (rel: string) => {
    try {
      return fs.statSync(path.join(def.dir, rel)).isFile();
    } catch {
      return false;
    }
  };
  const listed = (sub: string, re: RegExp) => {
    try {
      return fs.readdirSync(path.join(def.dir, sub)).filter((n) => re.test(n)).map((n) => `${sub}/${n}`);
    } catch {
      return [];
    }
  };
  const sourced = [...new Set([...sourcedFiles(def.dir).map((f) => f.rel), ...listed('lib', /\.sh$/), 'defaults.conf', ...listed('variants', /\.conf$/)])]
    .filter((rel) => !scripts.includes(rel) && isRegular(rel))
    .sort();
  const out = runShellcheck(shellcheck, def.dir, scripts, []);
  if (sourced.length) out.push(...runShellcheck(shellcheck, def.dir, sourced, [`--shell=${shell}`]));
  return out;
}

const SHELLCHECK_LEVELS = ['error', 'warning', 'info', 'style'];

/** ShellCheck's findings counted per file and level, files in name order. */
function shellcheckSummary(found: Problem[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const p of [...found].sort((a, b) => (a.file ?? '').localeCompare(b.file ?? ''))) {
    if (!p.level) continue;
    const f = p.file ?? '?';
    out[f] ??= {};
    out[f][p.level] = (out[f][p.level] ?? 0) + 1;
  }
  return out;
}

function readHead(file: string): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(256);
      return buf.subarray(0, fs.readSync(fd, buf, 0, 256, 0)).toString('latin1');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

function runShellcheck(shellcheck: string, dir: string, files: string[], extra: string[]): Problem[] {
  const r = runSync([shellcheck, '--format=json1', '--external-sources', '--source-path=SCRIPTDIR', ...extra, ...files], { cwd: dir, stdin: 'pipe', maxBuffer: 32 * 1024 * 1024 });
  let comments: ShellcheckComment[] = [];
  try {
    comments = (JSON.parse(r.stdout) as { comments: ShellcheckComment[] }).comments;
  } catch {
    return [{ severity: 'warning', code: 'shellcheck', message: `shellcheck failed: ${(r.stderr || r.error?.message || '').trim()}` }];
  }
  // ShellCheck's own levels: error and warning fail --strict, info and style are notes.
  return comments.map((c) => ({
    severity: c.level === 'error' || c.level === 'warning' ? ('warning' as const) : ('info' as const),
    code: `shellcheck-SC${c.code}`,
    message: `${c.file}:${c.line}:${c.column}: ${c.level}: ${c.message} [SC${c.code}]`,
    file: c.file,
    line: c.line,
    level: c.level,
  }));
}
