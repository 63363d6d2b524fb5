/**
 * Site templates: a template a site keeps itself (its mirror, its configuration management,
 * its naming), in the built-in templates' format (TEMPLATES.md), from a directory
 * (`new --template DIR`) or a git repository (`--template git+URL[#ref]`). Everything in it is
 * checked before anything is rendered — a missing manifest, an unknown key, a file outside the
 * template (by `..` or by a symbolic link), a bad mode — each a UserError naming the problem.
 * Its files are read once, when it is loaded: a git checkout is gone before the plan is made.
 * Where it came from is recorded in .ganeti-os.json (`templateSource`), so that `upgrade`
 * follows the same template: the directory as it is now, the ref's new head.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GanetiOsError, UsageError, UserError, errorMessage } from '../errors';
import { OS_API_VERSIONS, checkVariantName } from '../ganeti/rules';
import { TEMPLATES_DIR } from '../paths';
import { PROVENANCE_FILE, Provenance } from './provenance';
import type { Setting } from './settings';
import type { ParamSpec } from './spec';
import {
  ManifestFile,
  TEMPLATE_NAME_RE,
  Template,
  TemplateManifest,
  TemplateSourceRecord,
  composeTemplate,
  isBuiltinTemplate,
  listTemplates,
  loadTemplate,
} from './templates';
import { templateVersion } from './upgrade-record';
import { bashRegexError, checkParamSpec } from './validate-spec';
import { runSync } from '../system/process';
import { SHELL_VAR_RE } from './shell';

export const MANIFEST = 'template.json';

/** What `--template` names. */
export type TemplateRef = { kind: 'builtin'; name: string } | { kind: 'dir'; dir: string } | { kind: 'git'; url: string; ref?: string; subdir?: string };

export interface SourceOptions {
  /** The environment git runs with (PATH, HOME, proxies, credentials helpers). */
  env: Record<string, string | undefined>;
  warn?: (message: string) => void;
}

const GIT_PREFIX = 'git+';

/**
 * `--template`'s value: `git+URL[#ref]` (URL: anything git fetches from, or a local path), a
 * built-in template's name, or a directory (a path with a '/', or an existing directory in
 * `cwd`). A built-in name wins over a directory of the same name: write ./NAME for the directory.
 */
export function parseTemplateRef(arg: string, cwd: string): TemplateRef {
  if (arg.startsWith(GIT_PREFIX)) {
    const rest = arg.slice(GIT_PREFIX.length);
    const hash = rest.lastIndexOf('#');
    const url = hash >= 0 ? rest.slice(0, hash) : rest;
    // #REF, #REF:DIR or #:DIR (the template in a directory of the repository): a ref has no ':'.
    const fragment = hash >= 0 ? rest.slice(hash + 1) : undefined;
    const colon = fragment?.indexOf(':') ?? -1;
    const ref = fragment === undefined ? undefined : colon >= 0 ? fragment.slice(0, colon) || undefined : fragment;
    const subdir = fragment !== undefined && colon >= 0 ? fragment.slice(colon + 1).replace(/\/+$/, '') : undefined;
    if (!url) throw new UserError(`--template ${arg}: no repository after git+`, ['Write git+URL[#ref[:dir]]: git+https://git.example.org/os-template.git#v2, git+/srv/git/infra.git#main:ganeti/template']);
    if (ref !== undefined && (ref === '' || /[\s~^:?*[\\]|\.\.|^-/.test(ref))) throw new UserError(`--template ${arg}: '${ref}' is not a git ref (a branch, a tag or a commit)`);
    if (subdir !== undefined && (subdir === '' || subdir.startsWith('/') || subdir.split('/').some((p) => p === '' || p === '.' || p === '..'))) {
      throw new UserError(`--template ${arg}: '${subdir}' is not a directory of the repository (a relative path without '.' or '..' parts, after the ':')`);
    }
    // A URL (scheme://...) or scp-like host:path goes to git as it is; anything else is a local path.
    const remote = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^[^/]*:/.test(url);
    return { kind: 'git', url: remote ? url : path.resolve(cwd, url), ...(ref !== undefined ? { ref } : {}), ...(subdir !== undefined ? { subdir } : {}) };
  }
  if (isBuiltinTemplate(arg)) return { kind: 'builtin', name: arg };
  if (arg.includes('/') || arg === '.' || arg === '..' || fs.existsSync(path.resolve(cwd, arg))) return { kind: 'dir', dir: path.resolve(cwd, arg) };
  return { kind: 'builtin', name: arg };
}

/** How a source reads in messages and in `info`: the directory, or git+URL#ref:dir as `--template` takes it. */
export function describeSource(s: Pick<TemplateSourceRecord, 'kind' | 'location' | 'ref' | 'subdir'>): string {
  if (s.kind === 'dir') return s.location;
  const fragment = `${s.ref ?? ''}${s.subdir !== undefined ? `:${s.subdir}` : ''}`;
  return `${GIT_PREFIX}${s.location}${fragment ? `#${fragment}` : ''}`;
}

/** The template's directory in a checkout: the top, or `subdir` (which must be a directory inside it, not a link out of it). */
function inCheckout(checkout: string, subdir: string | undefined, where: string): string {
  if (subdir === undefined) return checkout;
  const dir = path.join(checkout, subdir);
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    throw new UserError(`no template at ${where}: the repository has no directory ${subdir}`);
  }
  const rel = path.relative(fs.realpathSync(checkout), real);
  if (rel === '..' || rel.startsWith('..' + path.sep) || path.isAbsolute(rel)) throw new UserError(`template ${where}: ${subdir} is a symbolic link out of the repository`);
  return dir;
}

/** The template `ref` names, loaded and checked. Throws UsageError (unknown built-in name) or UserError. */
export function loadTemplateRef(ref: TemplateRef, opts: SourceOptions): Template {
  switch (ref.kind) {
    case 'builtin':
      return loadTemplate(ref.name);
    case 'dir':
      return loadTemplateDir(ref.dir, { kind: 'dir', location: ref.dir });
    case 'git':
      return withGitCheckout(ref.url, ref.ref, undefined, opts, (dir, commit) => {
        const source = { kind: 'git' as const, location: ref.url, ...(ref.ref !== undefined ? { ref: ref.ref } : {}), ...(ref.subdir !== undefined ? { subdir: ref.subdir } : {}), commit };
        return loadTemplateDir(inCheckout(dir, ref.subdir, describeSource(source)), source);
      });
  }
}

/**
 * The template a definition's record names: a built-in one by name, a site template from its
 * recorded source — at the recorded commit (`at: 'recorded'`, for the commands that re-render
 * files of the version the definition has; the ref's head when that commit cannot be fetched)
 * or as it is now (`at: 'latest'`, for upgrade). A source that is gone is a UserError saying so.
 */
export function loadRecordedTemplate(prov: Provenance, root: string, at: 'recorded' | 'latest', opts: SourceOptions): Template {
  const s = prov.templateSource;
  if (!s) return loadTemplate(prov.template);
  if ((s.kind !== 'dir' && s.kind !== 'git') || typeof s.location !== 'string' || !s.location) {
    throw new UserError(`${path.join(root, PROVENANCE_FILE)} is damaged: its templateSource is not a directory or a git repository; nothing was changed`);
  }
  const where = describeSource(s);
  const moved = [`If the template moved: ganeti-os upgrade --template ${s.kind === 'git' ? 'git+NEW-URL[#ref]' : 'NEW-DIR'} (in ${root}) follows it from there.`];
  if (s.kind === 'dir' && !fs.existsSync(s.location)) {
    throw new UserError(`${root} follows the site template ${where}, which is gone (the directory does not exist); nothing was changed`, moved);
  }
  try {
    if (s.kind === 'dir') return loadTemplateDir(s.location, { kind: 'dir', location: s.location });
    const fetch = (want: string | undefined) =>
      withGitCheckout(s.location, s.ref, want, opts, (dir, commit) => {
        const source = { kind: 'git' as const, location: s.location, ...(s.ref !== undefined ? { ref: s.ref } : {}), ...(s.subdir !== undefined ? { subdir: s.subdir } : {}), commit };
        return loadTemplateDir(inCheckout(dir, s.subdir, where), source);
      });
    if (at === 'recorded' && s.commit) {
      try {
        return fetch(s.commit);
      } catch (err) {
        if (!(err instanceof GanetiOsError) || /not installed/.test(err.message)) throw err;
        opts.warn?.(`cannot fetch the recorded commit ${s.commit.slice(0, 12)} of ${where} (${err.message}): using the head of ${s.ref ?? 'HEAD'}`);
      }
    }
    return fetch(undefined);
  } catch (err) {
    if (!(err instanceof GanetiOsError)) throw err;
    throw new UserError(`${root} follows the site template ${where}, which cannot be loaded: ${err.message}; nothing was changed`, [...err.details.filter((d) => !/template init/.test(d)), ...moved]);
  }
}

// ------------------------------------------------------------------------------------------
// git

function runGit(args: string[], opts: SourceOptions): { ok: boolean; stdout: string; stderr: string } {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.env)) if (v !== undefined && !k.startsWith('GIT_')) env[k] = v;
  // Never a prompt for a password (the command is not interactive about it); messages in English.
  Object.assign(env, { PATH: env.PATH ?? '/usr/bin:/bin', GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' });
  const r = runSync(['git', ...args], { env, timeoutMs: 10 * 60_000, killSignal: 'SIGTERM' });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new UserError('git is not installed: a template from a git repository needs it (apt-get install git)');
  }
  const what = `git ${args[0] === '-C' ? args[2] : args[0]}`;
  if (r.timedOut) throw new UserError(`${what} failed: it did not finish within 10 minutes`);
  if (r.error) throw new UserError(`${what} failed: ${errorMessage(r.error)}`);
  return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr };
}

/** Git's own reason, without its "fatal:"/"error:" prefixes and hints. */
function gitReason(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^hint:/.test(l));
  return lines.map((l) => l.replace(/^(fatal|error): /, '')).join('; ') || 'git failed';
}

/**
 * `fn` on a checkout of `want` (a commit), else `ref`, else HEAD of the repository at `url`:
 * one commit fetched (depth 1) into a temporary directory, removed afterwards on every path.
 */
function withGitCheckout<T>(url: string, ref: string | undefined, want: string | undefined, opts: SourceOptions, fn: (dir: string, commit: string) => T): T {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ganeti-os-template-'));
  try {
    const dir = path.join(tmp, 'checkout');
    let r = runGit(['init', '-q', dir], opts);
    if (!r.ok) throw new UserError(`cannot make a git checkout in ${tmp}: ${gitReason(r.stderr)}`);
    const target = want ?? ref ?? 'HEAD';
    r = runGit(['-C', dir, 'fetch', '-q', '--depth', '1', '--no-tags', url, target], opts);
    if (!r.ok) {
      const what = want ? `commit ${want}` : ref !== undefined ? `'${ref}'` : 'the default branch';
      throw new UserError(`cannot fetch ${what} of the git repository ${url}: ${gitReason(r.stderr)}`, [
        'The repository must be one git can fetch from here (a local path, or a URL this machine reaches); a ref is a branch, a tag or a commit.',
      ]);
    }
    r = runGit(['-C', dir, '-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', 'FETCH_HEAD'], opts);
    if (!r.ok) throw new UserError(`cannot check out ${url}: ${gitReason(r.stderr)}`);
    const commit = runGit(['-C', dir, 'rev-parse', 'HEAD'], opts).stdout.trim();
    return fn(dir, commit);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------
// Loading and checking a template directory

const TOP_KEYS = ['name', 'summary', 'version', 'base', 'hidden', 'defaults', 'settings', 'knownVariants', 'package', 'files'];
const FILE_KEYS = ['path', 'source', 'generator', 'mode', 'owner', 'minApi', 'each', 'data'];
const DEFAULTS_KEYS = ['apiVersions', 'variants', 'parameters'];
const PARAM_KEYS = ['name', 'description', 'default', 'choices', 'pattern'];
const SETTING_KEYS = ['key', 'description', 'default', 'emptyAllowed', 'in', 'doc', 'paragraph', 'example', 'check'];
const GENERATORS: NonNullable<ManifestFile['generator']>[] = ['api-version', 'variants-list', 'parameters-list', 'parameters-sh', 'settings-sh', 'variant-conf'];
/** A comment: allowed in every object of the manifest (JSON has no comments). */
const COMMENT_KEY = '$comment';

type Obj = Record<string, unknown>;

/** A value as a message shows it: JSON, cut short. */
function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The keys of whatever `v` is (none unless a plain object), for objects whose keys are free. */
const freeKeys = (v: unknown): string[] => (typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.keys(v) : []);

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

class Checker {
  constructor(
    /** How the template is named in messages. */
    private readonly where: string,
  ) {}

  fail(at: string, problem: string, hints: string[] = []): never {
    throw new UserError(`template ${this.where}: ${at ? `${at}: ` : ''}${problem}`, [...hints, 'The format of a template: TEMPLATES.md (ganeti-os template init DIR --from debian writes a complete one).']);
  }

  object(v: unknown, at: string, allowed: string[], required: string[] = []): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(at, `must be an object ({...}), not ${show(v)}`);
    const o = v as Obj;
    for (const k of Object.keys(o)) {
      if (allowed.includes(k) || k === COMMENT_KEY) continue;
      const near = allowed.filter((a) => distance(a.toLowerCase(), k.toLowerCase()) <= 2);
      this.fail(at, `unknown key "${k}"${near.length ? ` (did you mean "${near[0]}"?)` : ''}`, [`The keys here: ${allowed.join(', ')} (and "${COMMENT_KEY}" for a comment).`]);
    }
    for (const k of required) if (o[k] === undefined) this.fail(at, `"${k}" is missing`);
    return o;
  }

  string(v: unknown, at: string, opts: { empty?: boolean; line?: boolean } = {}): string {
    if (typeof v !== 'string') this.fail(at, `must be a string, not ${show(v)}`);
    if (!opts.empty && v === '') this.fail(at, 'must not be empty');
    if (opts.line && /[\r\n]/.test(v)) this.fail(at, 'must be a single line');
    return v;
  }

  array(v: unknown, at: string): unknown[] {
    if (!Array.isArray(v)) this.fail(at, `must be a list ([...]), not ${show(v)}`);
    return v;
  }

  strings(v: unknown, at: string): string[] {
    return this.array(v, at).map((x, i) => this.string(x, `${at}[${i}]`, { line: true }));
  }

  boolean(v: unknown, at: string): boolean {
    if (typeof v !== 'boolean') this.fail(at, `must be true or false, not ${show(v)}`);
    return v;
  }
}

/** A file's mode: a string of octal digits that lets its owner read it and no one else write it. */
function checkMode(c: Checker, v: unknown, at: string): string {
  const hint = ['Modes are strings of octal digits: "0755" for scripts, "0644" for everything else.'];
  if (typeof v === 'number') c.fail(at, `mode ${v} is a JSON number (read as decimal): write it as a string, "0${v}"`, hint);
  if (typeof v !== 'string' || !/^0?[0-7]{3,4}$/.test(v)) c.fail(at, `bad mode ${JSON.stringify(v)}: not a file mode in octal`, hint);
  const m = parseInt(v, 8);
  if (m & 0o7000) c.fail(at, `bad mode "${v}": it sets the setuid, setgid or sticky bit, which no file of an OS definition needs`, hint);
  if (m & 0o022) c.fail(at, `bad mode "${v}": group or others could write the file, and the scripts run as root on every node`, hint);
  if (!(m & 0o400)) c.fail(at, `bad mode "${v}": its owner could not read the file`, hint);
  return '0' + m.toString(8).padStart(3, '0');
}

/** A path in the definition: relative, inside it, not one of ganeti-os's own files. */
function checkOutputPath(c: Checker, v: unknown, at: string, perVariant: boolean): string {
  const p = c.string(v, `${at}.path`, { line: true });
  const parts = p.split('/');
  if (p.startsWith('/') || parts.some((s) => s === '' || s === '.' || s === '..') || p.includes('\\') || p.includes('\0')) {
    c.fail(at, `path "${p}" is outside the definition or not a plain relative path (a file's path is relative to the definition's directory, without '.', '..' or empty parts)`);
  }
  if (parts[0] === PROVENANCE_FILE || parts[0].startsWith('.ganeti-os')) c.fail(at, `path "${p}" is ganeti-os's own (its record, lock and state)`);
  if (perVariant !== p.includes('{variant}')) {
    c.fail(at, perVariant ? `path "${p}" has no {variant}, so every variant would write the same file` : `path "${p}" has {variant}, which only a file with "each": "variant" replaces`);
  }
  return p;
}

/** The text of a file of the template, checked to be inside it (also through symbolic links). */
function readSource(c: Checker, dir: string, realDir: string, source: string, at: string): { abs: string; text: string } {
  const outside = (how: string) =>
    c.fail(at, `source "${source}" is a file outside the template (${how}); a template uses only files inside its own folder`, ['Copy the file into the template and name it from there.']);
  if (path.isAbsolute(source)) outside('an absolute path');
  const abs = path.resolve(dir, source);
  const rel = path.relative(dir, abs);
  if (rel === '' || rel === '..' || rel.startsWith('..' + path.sep)) outside(`it leaves the folder by '..'`);
  if (rel.split(path.sep)[0] === '.git') c.fail(at, `source "${source}" is inside .git`);
  let real: string;
  try {
    real = fs.realpathSync(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      const link = (() => {
        try {
          return fs.lstatSync(abs).isSymbolicLink();
        } catch {
          return false;
        }
      })();
      c.fail(at, link ? `source "${source}" is a symbolic link to ${fs.readlinkSync(abs)}, which does not exist` : `source "${source}" does not exist in the template`);
    }
    c.fail(at, `source "${source}" cannot be read: ${errorMessage(err)}`);
  }
  const realRel = path.relative(realDir, real);
  if (realRel === '..' || realRel.startsWith('..' + path.sep) || path.isAbsolute(realRel)) outside(`through a symbolic link, to ${real}`);
  const st = fs.statSync(real);
  if (!st.isFile()) c.fail(at, `source "${source}" is not a regular file`);
  const buf = fs.readFileSync(real);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    c.fail(at, `source "${source}" is not UTF-8 text (a definition's files are text)`);
  }
  if (text.includes('\0')) c.fail(at, `source "${source}" is binary (it holds NUL bytes); a definition's files are text`);
  if (source.endsWith('.hbs')) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('handlebars') as typeof import('handlebars')).precompile(text, { noEscape: true, strict: false });
    } catch (err) {
      c.fail(at, `source "${source}" is not a valid Handlebars template: ${errorMessage(err).split('\n').filter((l) => l.trim()).join(' ')}`);
    }
  }
  return { abs, text };
}

function checkFile(c: Checker, v: unknown, i: number, dir: string, realDir: string, contents: Map<string, string>): ManifestFile {
  const label = (() => {
    const p = (v as Obj | null)?.path;
    return typeof p === 'string' ? `files[${i}] (${p})` : `files[${i}]`;
  })();
  const o = c.object(v, label, FILE_KEYS, ['path', 'mode', 'owner']);
  if (o.each !== undefined && o.each !== 'variant') c.fail(label, `"each" must be "variant", not ${JSON.stringify(o.each)}`);
  const out: ManifestFile = { path: checkOutputPath(c, o.path, label, o.each === 'variant'), mode: checkMode(c, o.mode, label), owner: 'tool' };
  if (o.owner !== 'tool' && o.owner !== 'user') c.fail(label, `"owner" must be "tool" (ganeti-os regenerates it) or "user" (written once, then the admin's), not ${JSON.stringify(o.owner)}`);
  out.owner = o.owner;
  if ((o.source === undefined) === (o.generator === undefined)) c.fail(label, 'give either "source" (a file of the template) or "generator" (one of ganeti-os\'s), not both or neither');
  if (o.generator !== undefined) {
    if (!GENERATORS.includes(o.generator as never)) c.fail(label, `unknown generator ${JSON.stringify(o.generator)} (the generators: ${GENERATORS.join(', ')})`);
    out.generator = o.generator as ManifestFile['generator'];
    if (out.generator === 'variant-conf' && o.each !== 'variant') c.fail(label, 'the variant-conf generator needs "each": "variant"');
  } else {
    const source = c.string(o.source, `${label}.source`, { line: true });
    const { abs, text } = readSource(c, dir, realDir, source, label);
    contents.set(abs, text);
    out.source = source;
  }
  if (o.minApi !== undefined) {
    if (!OS_API_VERSIONS.includes(o.minApi as never)) c.fail(label, `"minApi" must be one of ${OS_API_VERSIONS.join(', ')}, not ${JSON.stringify(o.minApi)}`);
    out.minApi = o.minApi as number;
  }
  if (o.each !== undefined) out.each = 'variant';
  if (o.data !== undefined) out.data = c.object(o.data, `${label}.data`, freeKeys(o.data));
  return out;
}

function checkParams(c: Checker, v: unknown, at: string): ParamSpec[] {
  return c.array(v, at).map((x, i) => {
    const pa = `${at}[${i}]`;
    const o = c.object(x, pa, PARAM_KEYS, ['name', 'description']);
    const p: ParamSpec = { name: c.string(o.name, `${pa}.name`, { line: true }), description: c.string(o.description, `${pa}.description`, { line: true }) };
    if (o.default !== undefined) p.default = c.string(o.default, `${pa}.default`, { empty: true, line: true });
    if (o.choices !== undefined) p.choices = c.strings(o.choices, `${pa}.choices`);
    if (o.pattern !== undefined) p.pattern = c.string(o.pattern, `${pa}.pattern`, { line: true });
    try {
      checkParamSpec(p);
    } catch (err) {
      if (err instanceof UsageError) c.fail(`${pa} (${p.name})`, err.message);
      throw err;
    }
    return p;
  });
}

function checkSettings(c: Checker, v: unknown): Setting[] {
  return c.array(v, 'settings').map((x, i) => {
    const at = `settings[${i}]`;
    const o = c.object(x, at, SETTING_KEYS, ['key', 'description']);
    const key = c.string(o.key, `${at}.key`, { line: true });
    if (!SHELL_VAR_RE.test(key.replace(/<[A-Z]+>/g, 'X'))) c.fail(at, `"${key}" is not a shell variable name (upper-case letters, digits and _; <WORD> for a family, as NETWORK_<LINK>_PREFIX)`);
    const s: Setting = { key, description: c.string(o.description, `${at}.description`, { line: true }) };
    if (o.default !== undefined) s.default = c.string(o.default, `${at}.default`, { empty: true, line: true });
    if (o.emptyAllowed !== undefined) s.emptyAllowed = c.boolean(o.emptyAllowed, `${at}.emptyAllowed`);
    if (o.in !== undefined && o.in !== 'variant') c.fail(at, `"in" must be "variant" (or absent: a setting of defaults.conf), not ${JSON.stringify(o.in)}`);
    if (o.in !== undefined) s.in = 'variant';
    if (o.doc !== undefined) s.doc = c.strings(o.doc, `${at}.doc`);
    if (o.paragraph !== undefined) s.paragraph = c.boolean(o.paragraph, `${at}.paragraph`);
    if (o.example !== undefined) {
      const e = c.object(o.example, `${at}.example`, ['key', 'value'], ['key', 'value']);
      s.example = { key: c.string(e.key, `${at}.example.key`, { line: true }), value: c.string(e.value, `${at}.example.value`, { empty: true, line: true }) };
    }
    if (o.check !== undefined) {
      const e = c.object(o.check, `${at}.check`, ['pattern', 'what'], ['pattern', 'what']);
      s.check = { pattern: c.string(e.pattern, `${at}.check.pattern`, { line: true }), what: c.string(e.what, `${at}.check.what`, { line: true }) };
      const bad = bashRegexError(s.check.pattern);
      if (bad) c.fail(at, bad);
    }
    return s;
  });
}

/**
 * The manifest of the template in `dir`, checked (named `where` in messages), with every file
 * it names read into `contents`. Defaults it leaves out come from its last base template.
 */
function checkManifest(c: Checker, raw: unknown, dir: string, contents: Map<string, string>): TemplateManifest {
  const o = c.object(raw, '', TOP_KEYS, ['name', 'summary', 'files']);
  const name = c.string(o.name, 'name', { line: true });
  if (!TEMPLATE_NAME_RE.test(name)) c.fail('name', `"${name}" is not a template name (lower-case letters, digits and '-', starting with a letter or digit)`);
  const m: TemplateManifest = { name, summary: c.string(o.summary, 'summary', { line: true }), defaults: { apiVersions: [], variants: [], parameters: [] }, files: [] };
  if (o.version !== undefined) {
    if (typeof o.version === 'number') c.fail('version', `${o.version} is a JSON number: write it as a string, "${o.version}"`);
    m.version = c.string(o.version, 'version', { line: true });
  }
  if (o.hidden !== undefined) m.hidden = c.boolean(o.hidden, 'hidden');
  if (o.base !== undefined) {
    m.base = c.strings(o.base, 'base');
    const builtin = fs.readdirSync(TEMPLATES_DIR).filter((n) => isBuiltinTemplate(n)).sort();
    for (const b of m.base) {
      if (!isBuiltinTemplate(b)) c.fail('base', `"${b}" is not a template ganeti-os ships: a site template builds on the built-in ones (${builtin.join(', ')})`);
    }
  }
  const last = m.base?.length ? loadTemplate(m.base[m.base.length - 1]).manifest.defaults : { apiVersions: [20, 15, 10], variants: ['default'], parameters: [] };
  const d = o.defaults === undefined ? {} : c.object(o.defaults, 'defaults', DEFAULTS_KEYS);
  if (d.apiVersions !== undefined) {
    const a = c.array(d.apiVersions, 'defaults.apiVersions');
    if (!a.length) c.fail('defaults.apiVersions', 'must list at least one version');
    for (const x of a) if (!OS_API_VERSIONS.includes(x as never)) c.fail('defaults.apiVersions', `${JSON.stringify(x)} is not an OS API version (${OS_API_VERSIONS.join(', ')})`);
    m.defaults.apiVersions = a as number[];
  } else m.defaults.apiVersions = [...last.apiVersions];
  if (d.variants !== undefined) {
    m.defaults.variants = c.strings(d.variants, 'defaults.variants');
    for (const v of m.defaults.variants) {
      const bad = checkVariantName(v);
      if (bad) c.fail('defaults.variants', bad);
    }
    if (new Set(m.defaults.variants).size !== m.defaults.variants.length) c.fail('defaults.variants', 'a variant is listed twice');
  } else m.defaults.variants = [...last.variants];
  if (Math.max(...m.defaults.apiVersions) >= 15 && !m.defaults.variants.length) c.fail('defaults.variants', 'must name at least one variant: Ganeti requires one from API 15 on');
  m.defaults.parameters = d.parameters !== undefined ? checkParams(c, d.parameters, 'defaults.parameters') : last.parameters.map((p) => ({ ...p }));
  if (new Set(m.defaults.parameters.map((p) => p.name)).size !== m.defaults.parameters.length) c.fail('defaults.parameters', 'a parameter is declared twice');
  if (o.settings !== undefined) m.settings = checkSettings(c, o.settings);
  if (o.knownVariants !== undefined) {
    const kv = c.object(o.knownVariants, 'knownVariants', freeKeys(o.knownVariants));
    m.knownVariants = {};
    for (const [v, settings] of Object.entries(kv)) {
      if (v === COMMENT_KEY) continue;
      const bad = checkVariantName(v);
      if (bad) c.fail('knownVariants', bad);
      const so = c.object(settings, `knownVariants.${v}`, freeKeys(settings));
      m.knownVariants[v] = {};
      for (const [k, val] of Object.entries(so)) {
        if (k === COMMENT_KEY) continue;
        if (!SHELL_VAR_RE.test(k)) c.fail(`knownVariants.${v}`, `"${k}" is not a shell variable name`);
        m.knownVariants[v][k] = c.string(val, `knownVariants.${v}.${k}`, { empty: true, line: true });
      }
    }
  }
  if (o.package !== undefined) {
    const p = c.object(o.package, 'package', ['depends', 'suggests']);
    m.package = {};
    if (p.depends !== undefined) m.package.depends = c.strings(p.depends, 'package.depends');
    if (p.suggests !== undefined) m.package.suggests = c.strings(p.suggests, 'package.suggests');
  }
  const realDir = fs.realpathSync(dir);
  const seen = new Set<string>();
  m.files = c.array(o.files, 'files').map((f, i) => {
    const file = checkFile(c, f, i, dir, realDir, contents);
    if (seen.has(file.path)) c.fail(`files[${i}] (${file.path})`, 'the path is listed twice');
    seen.add(file.path);
    return file;
  });
  return m;
}

/** sha256 (first 12 hex digits) over the template's own files, .git left out: path and content, a link's target. */
function treeHash(dir: string): string {
  const h = crypto.createHash('sha256');
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && e.name === '.git') continue;
      if (e.isDirectory()) walk(r);
      else if (e.isSymbolicLink()) h.update(`${r}\0->${fs.readlinkSync(path.join(dir, r))}\0`);
      else if (e.isFile()) {
        const content = fs.readFileSync(path.join(dir, r));
        h.update(`${r}\0${content.length}\0`).update(content);
      }
    }
  };
  walk('');
  return h.digest('hex').slice(0, 12);
}

/** Debian relations along the base chain, then the template's own (as `pack` reads a built-in template's). */
function relations(m: TemplateManifest): { depends: string[]; suggests: string[] } {
  const depends: string[] = [];
  const suggests: string[] = [];
  const add = (p: TemplateManifest['package']) => {
    for (const x of p?.depends ?? []) if (!depends.includes(x)) depends.push(x);
    for (const x of p?.suggests ?? []) if (!suggests.includes(x)) suggests.push(x);
  };
  const visit = (name: string) => {
    const t = loadTemplate(name);
    for (const b of t.manifest.base ?? []) visit(b);
    add(t.manifest.package);
  };
  for (const b of m.base ?? []) visit(b);
  add(m.package);
  return { depends, suggests };
}

/**
 * The site template in `dir`, checked and read: every problem is a UserError naming it.
 * `source` says where it came from (recorded with the definitions made from it).
 */
export function loadTemplateDir(dir: string, source: Pick<TemplateSourceRecord, 'kind' | 'location' | 'ref' | 'subdir' | 'commit'>): Template {
  const where = describeSource(source);
  const c: Checker = new Checker(where);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const known = listTemplates().map((t) => t.name);
      throw new UserError(`no template at ${dir}: it does not exist`, [`The built-in templates: ${known.join(', ')}; a site template is a directory holding ${MANIFEST}, or git+URL[#ref].`]);
    }
    throw new UserError(`cannot read the template ${dir}: ${errorMessage(err)}`);
  }
  if (!st.isDirectory()) throw new UserError(`${dir} is not a template: it is not a directory (a template is a directory holding ${MANIFEST} and its files)`);
  const manifestPath = path.join(dir, MANIFEST);
  let text: string;
  try {
    text = fs.readFileSync(manifestPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      c.fail('', `no manifest: ${MANIFEST} is missing (a template is a directory holding ${MANIFEST}, which lists its files, their modes and owners)`);
    }
    c.fail(MANIFEST, `cannot be read: ${errorMessage(err)}`);
  }
  const realManifest = path.relative(fs.realpathSync(dir), fs.realpathSync(manifestPath));
  if (realManifest.startsWith('..')) c.fail(MANIFEST, 'is a symbolic link to a file outside the template');
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, '')); // an editor's byte-order mark is no error
  } catch (err) {
    c.fail(MANIFEST, `is not valid JSON: ${errorMessage(err)}`);
  }
  const contents = new Map<string, string>();
  const manifest = checkManifest(c, raw, dir, contents);
  const t = composeTemplate(manifest, dir);
  const hash = treeHash(dir);
  const base = templateVersion({ ...t, files: t.files.filter((f) => f.dir !== dir) });
  t.contents = contents;
  t.version = crypto.createHash('sha256').update(`${base}\0${hash}`).digest('hex').slice(0, 12);
  t.source = {
    kind: source.kind,
    location: source.location,
    ...(source.ref !== undefined ? { ref: source.ref } : {}),
    ...(source.subdir !== undefined ? { subdir: source.subdir } : {}),
    ...(source.commit ? { commit: source.commit } : {}),
    hash,
    ...(manifest.version !== undefined ? { version: manifest.version } : {}),
    summary: manifest.summary,
    package: relations(manifest),
  };
  return t;
}
