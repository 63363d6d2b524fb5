/**
 * What ganeti-os finds wrong or risky in a definition beyond Ganeti's own verdict: things
 * Ganeti accepts on disk but that break later (see ganeti-facts.md). `validate` reports these
 * as warnings; `info` lists them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  OS_API_FILE,
  OS_API_V15,
  OS_API_V20,
  OS_API_VERSIONS,
  OS_PARAMETERS_FILE,
  OS_SCRIPTS,
  OS_SCRIPT_CREATE,
  OS_SCRIPT_CREATE_UNTRUSTED,
  OS_SCRIPT_VERIFY,
  OS_VARIANTS_FILE,
  checkParamName,
  checkVariantName,
  parseParametersList,
} from '../ganeti/rules';
import type { OsDefinition } from './model';
import { findUtf8Error, pyDecodeUtf8, pyReprStr } from '../ganeti/pyfmt';

export interface Problem {
  /** error: Ganeti refuses it; warning: breaks later (fails --strict); info: worth knowing. */
  severity: 'error' | 'warning' | 'info';
  /** Stable identifier, e.g. "ganeti", "parameters-blank-line". */
  code: string;
  message: string;
  file?: string;
  line?: number;
}

const LIST_FILES = [OS_API_FILE, OS_VARIANTS_FILE, OS_PARAMETERS_FILE];

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
      warn('bom', `${f} starts with a byte-order mark (U+FEFF): Ganeti reads it as part of the first line`, f, 1);
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
    if (head !== undefined) {
      if (!head.startsWith('#!')) {
        warn('no-shebang', `script '${s}' does not start with '#!': Ganeti executes it directly and the kernel refuses it (ENOEXEC)`, s, 1);
      } else if (/^#![^\n]*\r/.test(head)) {
        warn('crlf', `script '${s}' has a CR (\\r) at the end of its '#!' line: the interpreter "${head.slice(2).split(/\r/)[0].trim()}\\r" does not exist`, s, 1);
      } else if (head.includes('\r')) {
        warn('crlf', `script '${s}' has CR (\\r) line ends: shells read them as part of each command`, s);
      }
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
      warn('api-unsupported', `${OS_API_FILE} lists ${unsupported.join(', ')}, which Ganeti 3.0 does not support (it uses ${def.apiVersion})`, OS_API_FILE, undefined, 'info');
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
          warn('parameters-blank-line', `${OS_PARAMETERS_FILE} line ${l.line} is blank: the node's parameter check crashes on it, so every instance add, reinstall or parameter change with this OS fails`, OS_PARAMETERS_FILE, l.line);
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
  if (def.variants.length) {
    const seen = new Set<string>();
    for (const v of def.variants) {
      if (seen.has(v)) warn('variants-duplicate', `variant ${shownName(v)} is listed twice`, OS_VARIANTS_FILE);
      seen.add(v);
      const bad = checkVariantName(v);
      if (bad) warn('unsafe-variant-name', reshow(bad, v), OS_VARIANTS_FILE);
    }
    for (const v of expectedVariantConfigs(def)) {
      if (!fs.existsSync(path.resolve(def.dir, v.file))) {
        warn('variant-config-missing', `variant '${v.variant}' has no ${v.file} (the definition keeps one configuration file per variant there)`, v.file);
      }
    }
  }
  return out;
}

function readHead(p: string): string | undefined {
  try {
    const fd = fs.openSync(p, 'r');
    try {
      const buf = Buffer.alloc(4096);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      return buf.subarray(0, n).toString('latin1');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

function readText(p: string): string | undefined {
  const buf = readBytes(p);
  if (!buf) return undefined;
  const r = pyDecodeUtf8(buf);
  return 'text' in r ? r.text.replace(/\r\n?/g, '\n') : undefined;
}

/**
 * The per-variant configuration files a definition expects:
 *  - with a `variants/` directory in the OS directory (the convention of ganeti-os,
 *    instance-image, nocloud), `variants/<v>.conf` there for every listed variant;
 *  - otherwise, where its shell code says: a `VARIANTS_DIR` default such as debootstrap's
 *    `: ${VARIANTS_DIR:="/etc/ganeti/instance-debootstrap/variants"}`, or a literal
 *    `/some/dir/$OS_VARIANT.conf`.
 */
function expectedVariantConfigs(def: OsDefinition): { variant: string; file: string }[] {
  const safe = def.variants.filter((v) => !v.includes('/'));
  let entries: string[] | undefined;
  try {
    if (fs.statSync(path.join(def.dir, 'variants')).isDirectory()) entries = fs.readdirSync(path.join(def.dir, 'variants'));
  } catch {
    entries = undefined;
  }
  if (entries && (entries.some((e) => e.endsWith('.conf')) || def.provenance)) {
    return safe.map((v) => ({ variant: v, file: `variants/${v}.conf` }));
  }
  const dirs = new Set<string>();
  for (const text of shellTexts(def.dir)) {
    for (const m of text.matchAll(/\bVARIANTS_DIR:?=["']?(\/[^"'\s}]+)/g)) dirs.add(m[1].replace(/\/+$/, ''));
    for (const m of text.matchAll(/["']?(\/[^"'\s$]+)\/\$\{?OS_VARIANT\}?\.conf/g)) dirs.add(m[1].replace(/\/+$/, ''));
  }
  if (dirs.size !== 1) return [];
  const dir = [...dirs][0];
  return safe.map((v) => ({ variant: v, file: path.join(dir, `${v}.conf`) }));
}

/** The text of the shell files in an OS directory (scripts and *.sh, top level and lib/), small ones only. */
function shellTexts(dir: string): string[] {
  const out: string[] = [];
  for (const sub of ['', 'lib']) {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(dir, sub));
    } catch {
      continue;
    }
    for (const n of names) {
      if (!(OS_SCRIPTS.includes(n) || n.endsWith('.sh'))) continue;
      const p = path.join(dir, sub, n);
      try {
        const st = fs.statSync(p);
        if (st.isFile() && st.size <= 256 * 1024) out.push(fs.readFileSync(p, 'latin1'));
      } catch {
        // unreadable: nothing to learn
      }
    }
  }
  return out;
}
