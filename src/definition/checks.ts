/**
 * What ganeti-os finds wrong or risky in a definition beyond Ganeti's own verdict: things
 * Ganeti accepts on disk but that break later (each checked against Ganeti 3.0's own code in
 * test/validate-broken.test.ts). `validate` reports these
 * as warnings; `info` lists them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isInside } from '../paths';
import { shellSyntaxErrors } from './shell-syntax';
import {
  OS_API_FILE,
  OS_API_V15,
  OS_API_V20,
  OS_API_VERSIONS,
  OS_PARAMETERS_FILE,
  OS_SCRIPTS,
  OS_SCRIPT_CREATE,
  OS_SCRIPT_CREATE_UNTRUSTED,
  OS_SCRIPT_EXPORT,
  OS_SCRIPT_IMPORT,
  OS_SCRIPT_VERIFY,
  OS_VARIANTS_FILE,
  checkOsVariant,
  checkParamName,
  checkVariantName,
  parseParametersList,
} from '../ganeti/rules';
import type { OsDefinition } from './model';
import { JOURNAL_FILE } from './writer';
import { ShellText, apiVersionRejection, readingOnce, isExecutableFile, isFile, nodeSourcedFiles, readHead, shellOf, shellTexts, sourcedFiles, variantConfigFailure, variantConfigSource, walkFiles } from './script-reading';
import { findUtf8Error, pyDecodeUtf8, pyReprStr } from '../ganeti/pyfmt';
import { BESIDE_SUFFIX, conflictMarkerLines } from './upgrade-merge';
import { definitionLayerFiles, nodeLayerFiles, variantConfigPlace } from './layers';
import { bomFinding, crlfFailure, helperInterpreterFindings, helperMissingFindings, interpreterProblem, sourcedCrlfFindings, sourcedEncodingFindings } from './exec-checks';

export { conflictMarkerLines, hasConflictMarkers } from './upgrade-merge';

export interface Problem {
  /**
   * error: instance operations will fail (Ganeti refuses the definition, code 'ganeti' or
   * 'ganeti-crash', or accepts it but creating, importing, ... an instance with it fails);
   * warning: risky or breaks something else later (fails --strict); info: worth knowing.
   */
  severity: 'error' | 'warning' | 'info';
  /** Stable identifier, e.g. "ganeti", "parameters-blank-line". */
  code: string;
  message: string;
  file?: string;
  line?: number;
  /** A finding of ShellCheck's: its own level (error, warning, info, style). */
  level?: string;
}

const LIST_FILES = [OS_API_FILE, OS_VARIANTS_FILE, OS_PARAMETERS_FILE];

/**
 * The encoding a script's first bytes (latin1) show when it is not one the kernel can read a
 * `#!` in: UTF-16 (a byte-order mark FF FE or FE FF, or '#' and '!' with NUL bytes between),
 * or UTF-8 with a byte-order mark before its '#!'. Undefined otherwise.
 */
export function scriptEncoding(head: string): string | undefined {
  if (head.startsWith('\xff\xfe') || head.startsWith('#\0!\0')) return `UTF-16 (little-endian${head.startsWith('\xff\xfe') ? ', byte-order mark FF FE' : ''})`;
  if (head.startsWith('\xfe\xff') || head.startsWith('\0#\0!')) return `UTF-16 (big-endian${head.startsWith('\xfe\xff') ? ', byte-order mark FE FF' : ''})`;
  if (head.startsWith('\xef\xbb\xbf#!')) return "UTF-8 with a byte-order mark (EF BB BF) before its '#!'";
  return undefined;
}

/** A name as it can be read in a message: quoted, with invisible or odd characters escaped. */
export function shownName(name: string): string {
  return pyReprStr(name);
}

/** Quote a name inside a message of ganeti.ts's checks the readable way. */
const reshow = (message: string, name: string) => message.split(`'${name}'`).join(shownName(name));

function readBytes(p: string): Buffer | undefined {
  try {
    return fs.readFileSync(p);
  } catch {
    return undefined;
  }
}

export function findProblems(def: OsDefinition): Problem[] {
  // Many checks read the same scripts: one read (and one split into lines) of each per call.
  return readingOnce(() => problemsOf(def));
}

function problemsOf(def: OsDefinition): Problem[] {
  const out: Problem[] = [];
  const warn = (code: string, message: string, file?: string, line?: number, severity: Problem['severity'] = 'warning') =>
    out.push({ severity, code, message, ...(file ? { file } : {}), ...(line ? { line } : {}) });
  if (!def.verdict.valid) {
    out.push({ severity: 'error', code: def.verdict.crash ? 'ganeti-crash' : 'ganeti', message: def.verdict.error ?? 'invalid' });
  }
  const regular = (f: string) => def.files[f]?.kind === 'file';
  const maxv = def.maxApiVersion;

  // Encoding and line ends of the files Ganeti reads as text.
  for (const f of LIST_FILES) {
    if (!regular(f)) continue;
    const buf = readBytes(def.files[f].path);
    if (!buf) continue;
    const bad = findUtf8Error(buf);
    if (bad && def.verdict.crashFile !== def.files[f].path) {
      const err = pyDecodeUtf8(buf) as { error: string };
      warn(
        'not-utf8',
        `${f} is not valid UTF-8 (${err.error}): Ganeti's OS scan raises UnicodeDecodeError on it and every OS on the node disappears from gnt-os diagnose and instance operations`,
        f,
      );
    }
    if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) {
      out.push(bomFinding(def, f));
    }
    if (buf.includes(0x0d)) {
      warn('crlf', `${f} has CR (\\r) line ends: write plain LF lines`, f);
    }
  }

  // Scripts: shebang, CRLF, execute bits for group and other.
  for (const s of OS_SCRIPTS) {
    if (!regular(s)) continue;
    const st = def.files[s];
    const head = readHead(st.path);
    const encoding = head !== undefined ? scriptEncoding(head) : undefined;
    const viaBash = s === OS_SCRIPT_EXPORT || s === OS_SCRIPT_IMPORT;
    if (encoding) {
      // The kernel sees no '#!' (ENOEXEC). Export and import fall back to bash (the import-export
      // daemon starts them from it): bash refuses a file with NUL bytes in its first line
      // (UTF-16: "cannot execute binary file", status 126), and runs a UTF-8 one, the mark and
      // its '#!' line a command not found that it goes past.
      const utf16 = encoding.startsWith('UTF-16');
      const fix = `save it as UTF-8 without a byte-order mark (${utf16 ? `iconv -f UTF-16 -t UTF-8 ${s}` : `sed -i '1s/^\\xEF\\xBB\\xBF//' ${s}`})`;
      if (viaBash && !utf16) {
        warn('no-shebang', `script '${s}' is encoded as ${encoding}: the kernel finds no '#!' at its start; it runs only because Ganeti's import-export daemon starts it from bash, which reads it as a bash script and complains about its first line; ${fix}`, s, 1);
      } else {
        warn('no-shebang', `script '${s}' is encoded as ${encoding}: the kernel finds no '#!' at its start and refuses it (ENOEXEC)${viaBash ? ", and bash, which Ganeti's import-export daemon falls back to, refuses it as a binary file (status 126)" : ''}; ${fix}`, s, 1, 'error');
      }
    } else if (head !== undefined) {
      if (!head.startsWith('#!') && (s === OS_SCRIPT_EXPORT || s === OS_SCRIPT_IMPORT)) {
        // The import-export daemon runs these through `bash -c "( cd DIR && DIR/export; )"`
        // (impexpd GetBashCommand): on ENOEXEC bash reads the file as a bash script itself.
        warn('no-shebang', `script '${s}' does not start with '#!': it runs only because Ganeti's import-export daemon starts it from bash, which then reads it as a bash script; start it with #!/bin/bash to say so`, s, 1);
      } else if (!head.startsWith('#!')) {
        warn('no-shebang', `script '${s}' does not start with '#!': Ganeti executes it directly and the kernel refuses it (ENOEXEC)`, s, 1, 'error');
      } else if (/^#![^\n]*\r/.test(head)) {
        warn('crlf-shebang', `script '${s}' has a CR (\\r) at the end of its '#!' line: the interpreter "${head.slice(2).split(/\r/)[0].trim()}\\r" does not exist, so the kernel cannot execute it`, s, 1, 'error');
      } else if (head.includes('\r')) {
        const sh = shellOf(head);
        const fatal = sh ? crlfFailure(readBytes(st.path)?.toString('latin1') ?? head, sh) : undefined;
        if (fatal) {
          warn('crlf', `script '${s}' has CR (\\r) line ends: line ${fatal.line} (${JSON.stringify(fatal.text)}) ${fatal.why}, so the script fails`, s, fatal.line, 'error');
        } else {
          warn('crlf', `script '${s}' has CR (\\r) line ends: shells read them as part of each command`, s);
        }
      }
      const bad = interpreterProblem(head, def.dir);
      if (bad) warn(bad.code, `script '${s}' ${bad.message}: the kernel cannot execute the script (ENOENT), so Ganeti cannot run it`, s, 1, 'error');
    }
    const mode = st.mode ?? 0;
    if ((mode & 0o100) !== 0 && (mode & 0o011) !== 0o011) {
      warn(
        'exec-bits',
        `script '${s}' is mode ${(mode & 0o777).toString(8).padStart(4, '0')}: group/other execute bits are missing (Ganeti only checks the owner's, but packages, rsync and non-root checks expect 0755)`,
        s,
      );
    }
  }

  out.push(...helperInterpreterFindings(def), ...helperMissingFindings(def), ...sourcedEncodingFindings(def), ...sourcedCrlfFindings(def));

  // Files the listed API makes Ganeti ignore.
  if (maxv !== undefined) {
    const fileExists = (f: string) => def.files[f] !== undefined && def.files[f].kind !== 'missing';
    if (maxv < OS_API_V15 && fileExists(OS_VARIANTS_FILE)) {
      warn('ignored-file', `${OS_VARIANTS_FILE} is ignored: Ganeti reads it only when ${OS_API_FILE} lists 15 or 20 (highest listed: ${maxv})`, OS_VARIANTS_FILE);
    }
    if (maxv < OS_API_V20) {
      for (const f of [OS_PARAMETERS_FILE, OS_SCRIPT_VERIFY]) {
        if (fileExists(f)) warn('ignored-file', `${f} is ignored: Ganeti uses it only when ${OS_API_FILE} lists 20 (highest listed: ${maxv})`, f);
      }
    }
    const unsupported = (def.apiVersions ?? []).filter((v) => !OS_API_VERSIONS.includes(v));
    if (unsupported.length && def.verdict.valid) {
      warn('api-unsupported', `${OS_API_FILE} lists ${unsupported.join(', ')}, which Ganeti does not support (it uses ${def.apiVersion})`, OS_API_FILE, undefined, 'info');
    }
  }
  if (regular(OS_SCRIPT_CREATE) && regular(OS_SCRIPT_CREATE_UNTRUSTED)) {
    warn('untrusted', `both 'create' and 'create_untrusted' exist: Ganeti marks the OS untrusted`, OS_SCRIPT_CREATE_UNTRUSTED, undefined, 'info');
  }

  // parameters.list lines Ganeti accepts on disk but chokes on later.
  if (maxv !== undefined && maxv >= OS_API_V20 && regular(OS_PARAMETERS_FILE)) {
    const text = readText(def.files[OS_PARAMETERS_FILE].path);
    if (text !== undefined) {
      const seen = new Set<string>();
      for (const l of parseParametersList(text)) {
        if (l.fields.length === 0) {
          // backend._CheckOSPList: [v[0] for v in os_obj.supported_parameters] raises IndexError.
          warn('parameters-blank-line', `${OS_PARAMETERS_FILE} line ${l.line} is blank: the node's parameter check crashes on it (IndexError in _CheckOSPList), so every instance add, reinstall or parameter change with this OS fails`, OS_PARAMETERS_FILE, l.line, 'error');
          continue;
        }
        const name = l.fields[0];
        if (name.startsWith('#')) {
          warn('parameters-comment-line', `${OS_PARAMETERS_FILE} line ${l.line} looks like a comment, but Ganeti has no comments there: it declares a parameter named ${shownName(name)}`, OS_PARAMETERS_FILE, l.line);
          continue;
        }
        if (l.fields.length === 1) {
          warn('parameters-name-only', `${OS_PARAMETERS_FILE} line ${l.line} (${shownName(name)}) has no description: it breaks 'gnt-os info' and the cross-node check of 'gnt-cluster verify'`, OS_PARAMETERS_FILE, l.line);
        }
        if (seen.has(name)) warn('parameters-duplicate', `parameter ${shownName(name)} is declared twice (line ${l.line})`, OS_PARAMETERS_FILE, l.line);
        seen.add(name);
        const bad = checkParamName(name);
        if (bad) warn('unsafe-parameter-name', `${OS_PARAMETERS_FILE} line ${l.line}: ${reshow(bad, name)}`, OS_PARAMETERS_FILE, l.line);
      }
    }
  }

  // Variants: names, duplicates, and the per-variant configuration file.
  const texts = shellTexts(def.dir);
  if (def.variants.length) {
    const seen = new Set<string>();
    for (const v of def.variants) {
      if (seen.has(v)) warn('variants-duplicate', `variant ${shownName(v)} is listed twice`, OS_VARIANTS_FILE);
      seen.add(v);
      const bad = checkVariantName(v);
      if (bad) warn('unsafe-variant-name', reshow(bad, v), OS_VARIANTS_FILE);
    }
    const missing = expectedVariantConfigs(def, texts).filter((v) => !fs.existsSync(path.resolve(def.dir, v.file)));
    // Whether the scripts fail without it (an else branch that exits, an unguarded . under set -e)
    // or go on without it ([ -f X ] && . X): an error, or a warning.
    const fails = missing.length ? variantConfigFailure(texts) : undefined;
    for (const v of missing) {
      if (fails) {
        warn(
          'variant-config-missing',
          `variant '${v.variant}' has no ${v.file}, and the scripts fail without it (${fails.rel} line ${fails.line} ${fails.why}): every instance of ${def.name}+${v.variant} fails (create, import, rename)`,
          v.file,
          undefined,
          'error',
        );
      } else {
        warn('variant-config-missing', `variant '${v.variant}' has no ${v.file} (the definition keeps one configuration file per variant there)`, v.file);
      }
    }
  } else if (def.verdict.valid && maxv !== undefined && maxv >= OS_API_V15) {
    // Ganeti sees no variants, but the definition has them: every NAME+VARIANT is refused.
    const vl = def.files[OS_VARIANTS_FILE];
    const confs = variantConfigFiles(def.dir);
    const why = `Ganeti reads no variants, so it refuses every instance named ${def.name}+VARIANT ("${checkOsVariant(def.name, `${def.name}+VARIANT`, [])}")`;
    if (vl?.isSymlink && vl.kind === 'missing') {
      warn('variants-none', `${OS_VARIANTS_FILE} is a symlink to ${vl.linkTarget}, which does not exist: ${why}${confs.length ? `, while ${confs.join(', ')} exist` : ''}`, OS_VARIANTS_FILE, undefined, 'error');
    } else if (confs.length || def.provenance?.answers.variants?.length) {
      const what = vl && vl.kind === 'file' ? `${OS_VARIANTS_FILE} lists no variant` : `there is no ${OS_VARIANTS_FILE}`;
      const have = confs.length ? confs.join(', ') : `the variants ganeti-os wrote (${def.provenance!.answers.variants.map((v) => v.name).join(', ')})`;
      warn('variants-none', `${what}: ${why}, while ${have} exist`, OS_VARIANTS_FILE, undefined, 'error');
    }
  }

  if (def.verdict.valid && def.apiVersions) {
    const rejected = apiVersionRejection(texts, def.apiVersions);
    if (rejected) warn('api-rejected', rejected, OS_API_FILE, undefined, 'error');
  }
  out.push(...shellSyntaxFindings(def, texts));
  // Markers break what runs them (a syntax error for the shell and Python alike); elsewhere
  // (README.md, a list file) they are an unfinished merge, not a failure. The same for a file
  // upgrade could not merge: what runs is neither the admin's definition nor the template's.
  for (const c of conflictMarkerFindings(def.dir)) {
    const f = c.file ?? '';
    const runs = OS_SCRIPTS.includes(f) || /\.(sh|conf|py)$/.test(f) || isExecutableFile(path.join(def.dir, f));
    out.push(runs ? c : { ...c, severity: 'warning' });
  }
  out.push(...specialFileFindings(def.dir));
  const interrupted = interruptedWrite(def.dir);
  if (interrupted) out.push(interrupted);
  return out;
}

/**
 * Configuration on this node that the scripts source, where it exists: for ganeti-os
 * definitions the node's configuration layers their runtime reads (layers.ts, by the runtime
 * version their record names); for others the absolute paths their code sources and the
 * listed variants' files where their code reads them. Absolute paths.
 */
function nodeConfigFiles(def: Pick<OsDefinition, 'dir' | 'files'> & Partial<Pick<OsDefinition, 'provenance'>>, texts: ShellText[]): string[] {
  const out = new Set<string>(nodeSourcedFiles(texts));
  if (def.provenance) for (const f of nodeLayerFiles(path.basename(def.dir), def.provenance.runtimeVersion)) out.add(f);
  const src = variantConfigSource(texts);
  if (src?.dir && !src.relative && (src.ext === '.conf' || src.ext === '.sh')) {
    try {
      for (const n of fs.readdirSync(src.dir)) if (n.endsWith(src.ext) && isFile(path.join(src.dir, n))) out.add(path.join(src.dir, n));
    } catch {
      // not on this node
    }
  }
  return [...out].sort();
}

/**
 * A ganeti-os write that was killed before its commit point leaves a journal: until the next
 * ganeti-os command rolls it back, the directory mixes new and old files. A warning then; after
 * the commit point only the clean-up is left (a note).
 */
function interruptedWrite(dir: string): Problem | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, JOURNAL_FILE), 'utf8');
  } catch {
    return undefined;
  }
  let state: unknown;
  try {
    state = (JSON.parse(text) as { state?: unknown }).state;
  } catch {
    state = undefined;
  }
  if (state === 'committed') {
    return { severity: 'info', code: 'interrupted-write', message: `${JOURNAL_FILE}: a ganeti-os write finished but was killed while cleaning up; the next ganeti-os command removes its backup files`, file: JOURNAL_FILE };
  }
  // Which files are new and which old is not known here: whether Ganeti fails with the mix
  // depends on them, so a warning (fails --strict), not an error.
  return {
    severity: 'warning',
    code: 'interrupted-write',
    message: `${JOURNAL_FILE}: a ganeti-os write was killed half-way, so some files may be new and some old; run the ganeti-os command again (it rolls the interrupted write back first)`,
    file: JOURNAL_FILE,
  };
}

/** variants/*.conf in the definition directory (names relative to it). */
function variantConfigFiles(dir: string): string[] {
  try {
    return fs
      .readdirSync(path.join(dir, 'variants'))
      .filter((n) => n.endsWith('.conf'))
      .sort()
      .map((n) => `variants/${n}`);
  } catch {
    return [];
  }
}

/**
 * `bash -n` (or `sh -n` for /bin/sh scripts) on every shell file the scripts run or source:
 * the scripts, every *.sh of the definition, what they source from it, defaults.conf and the
 * variants' configuration. A syntax error in any of them makes every instance operation fail,
 * though Ganeti calls the definition valid. A sourced file that is missing is the same fault.
 */
export function shellSyntaxFindings(def: Pick<OsDefinition, 'dir' | 'files'> & Partial<Pick<OsDefinition, 'provenance'>>, texts: ShellText[] = shellTexts(def.dir)): Problem[] {
  const out: Problem[] = [];
  const shells = new Map<string, 'bash' | 'sh'>();
  let anyBash = false;
  for (const s of OS_SCRIPTS) {
    if (def.files[s]?.kind !== 'file') continue;
    const head = readHead(def.files[s].path);
    const sh = head !== undefined ? shellOf(head) : undefined;
    if (sh) {
      shells.set(s, sh);
      if (sh === 'bash') anyBash = true;
    }
  }
  if (!shells.size) return out;
  const sourcedShell: 'bash' | 'sh' = anyBash ? 'bash' : 'sh';
  for (const t of texts) if (!shells.has(t.rel) && !OS_SCRIPTS.includes(t.rel)) shells.set(t.rel, sourcedShell);
  for (const src of sourcedFiles(def.dir)) {
    if (shells.has(src.rel)) continue;
    const abs = path.join(def.dir, src.rel);
    if (fs.existsSync(abs)) shells.set(src.rel, sourcedShell);
    else if (!src.optional) {
      out.push({
        severity: 'error',
        code: 'sourced-missing',
        message: `${src.by} line ${src.line} sources ${src.rel}, which does not exist: every instance operation that runs it fails`,
        file: src.rel,
      });
    }
  }
  for (const f of definitionLayerFiles(def.dir)) if (!shells.has(f)) shells.set(f, sourcedShell);
  // Files on this node the scripts source too: they fail here as surely.
  for (const f of nodeConfigFiles(def, texts)) if (!shells.has(f)) shells.set(f, sourcedShell);
  // One shell process per shell for every file (src/definition/shell-syntax.ts).
  for (const e of shellSyntaxErrors(def.dir, shells)) {
    const msg = e.message.trim().split('\n')[0].replace(`${e.rel}: `, '');
    const line = /line (\d+)/.exec(msg);
    out.push({
      severity: 'error',
      code: 'shell-syntax',
      message: `${e.rel} has a syntax error (${e.shell} -n: ${msg}): every script that runs or sources it fails`,
      file: e.rel,
      ...(line ? { line: Number(line[1]) } : {}),
    });
  }
  return out;
}

/**
 * FIFOs, sockets and devices inside the definition (hidden files too): a script sourcing one,
 * and anything copying the definition (pack, rollout), blocks on it or fails. One error each.
 */
export function specialFileFindings(dir: string): Problem[] {
  const out: Problem[] = [];
  walkFiles(dir, { hidden: true, maxDepth: 8 }, (rel, st) => {
    if (st.isFile()) return;
    const what = st.isFIFO() ? 'a FIFO (named pipe)' : st.isSocket() ? 'a socket' : 'a device';
    out.push({
      severity: 'error',
      code: 'not-regular',
      message: `${rel} is ${what}, not a regular file: a script that reads it blocks, and it cannot be packaged`,
      file: rel,
    });
  });
  return out;
}

/**
 * An upgrade left unfinished, in any file of the definition directory: merge-conflict markers (a
 * `<<<<<<<` line and a `>>>>>>>` line, as git and diff3 write them: a script carrying them is
 * still "valid" to Ganeti but runs both halves, or neither; one error per file, at its first
 * marker), and `<file>.ganeti-os-new`, the template's version `upgrade` could not merge into an
 * edited `<file>` (code `upgrade-unmerged`, reported on `<file>`). Reused by `pack` and `rollout`
 * to refuse such a definition. Hidden files and files over 1 MiB are skipped.
 */
export function conflictMarkerFindings(dir: string): Problem[] {
  const out: Problem[] = [];
  walkFiles(dir, {}, (rel, st) => {
    const n = path.basename(rel);
    if (st.isFile() && n.endsWith(BESIDE_SUFFIX) && n.length > BESIDE_SUFFIX.length) {
      const of = rel.slice(0, -BESIDE_SUFFIX.length);
      out.push({
        severity: 'error',
        code: 'upgrade-unmerged',
        message: `${rel} is the template's new ${of}, which upgrade could not merge into your edited one: the definition runs your ${of} with the template's new files around it. Merge ${rel} into ${of} by hand, then delete ${rel}`,
        file: of,
      });
      return;
    }
    if (!st.isFile() || st.size > 1024 * 1024) return;
    const buf = readBytes(path.join(dir, rel));
    if (!buf || buf.includes(0)) return;
    const [first] = conflictMarkerLines(buf.toString('latin1'));
    if (!first) return;
    const start = first.line - 1;
    out.push({
      severity: 'error',
      code: 'conflict-markers',
      message: `${rel} line ${start + 1} has merge-conflict markers (<<<<<<< ... >>>>>>>): resolve the conflict (keep one version, remove the marker lines) before any node uses it`,
      file: rel,
      line: start + 1,
    });
  });
  return out;
}

/**
 * Whether the definition's scripts refuse the OS_API_VERSION Ganeti would pass with `versions`
 * listed (see apiVersionRejection): a message, or undefined. For bump-api's warning.
 */
export function apiRejection(dir: string, versions: readonly number[]): string | undefined {
  return apiVersionRejection(shellTexts(dir), versions);
}

function readText(p: string): string | undefined {
  const buf = readBytes(p);
  if (!buf) return undefined;
  const r = pyDecodeUtf8(buf);
  return 'text' in r ? r.text.replace(/\r\n?/g, '\n') : undefined;
}

/**
 * The per-variant configuration files a definition's scripts read, where they read them (the
 * rule add-variant writes by: layers.ts's variantConfigPlace); nothing when that cannot be told
 * for certain (a variants/ directory nothing names). Each file relative to the OS directory
 * when inside it, else absolute.
 */
function expectedVariantConfigs(def: OsDefinition, texts: ShellText[]): { variant: string; file: string }[] {
  const safe = def.variants.filter((v) => !v.includes('/'));
  const place = variantConfigPlace(def.dir, texts, { own: !!def.provenance, listTarget: listTarget(def.dir) });
  if (!place || place.from === 'list') return [];
  const shown = (abs: string) => (isInside(abs, def.dir) ? path.relative(def.dir, abs) : abs);
  return safe.map((v) => ({ variant: v, file: shown(path.join(place.dir, `${v}${place.ext}`)) }));
}

/** The resolved target of a symlinked variants.list in `dir`, if it is one (and resolves). */
function listTarget(dir: string): string | undefined {
  const p = path.join(dir, OS_VARIANTS_FILE);
  try {
    return fs.lstatSync(p).isSymbolicLink() ? fs.realpathSync(p) : undefined;
  } catch {
    return undefined;
  }
}
