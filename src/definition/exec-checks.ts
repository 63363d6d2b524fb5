/**
 * Whether the kernel and the shell can run what a definition runs, read from the files (nothing
 * is executed): the interpreter a `#!` line names (absolute, relative to the working directory
 * Ganeti gives every script — the OS directory —, or through env on Ganeti's PATH), the helpers
 * the scripts execute, CR line ends the shell trips over, and a byte-order mark Ganeti keeps as
 * part of the first variant or parameter name. Each finding here is a failure Ganeti's own
 * code hits (test/validate-truth.test.ts proves each one through it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GANETI_DEFAULTS } from '../ganeti/defaults';
import { OS_API_V15, OS_API_V20, OS_PARAMETERS_FILE, OS_SCRIPTS, OS_VARIANTS_FILE } from '../ganeti/rules';
import { pyReprStr } from '../ganeti/pyfmt';
import type { OsDefinition } from './model';
import type { Problem } from './checks';
import { isExecutableFile, isFile, readHead, runContexts, scriptDirVariables, shellOf, shellTexts, sourcedFiles, variantConfigSource, walkFiles } from './script-reading';

/**
 * What is wrong with the interpreter of a file whose text starts with `head`, when Ganeti runs it
 * with `osDir` as working directory and its own PATH: a message completing "script X ...", or
 * undefined (fine, not a `#!` file, or a CR in the `#!` line, which is reported apart).
 */
export function interpreterProblem(head: string, osDir: string): { code: 'interpreter-missing' | 'interpreter-relative'; message: string } | undefined {
  if (!head.startsWith('#!')) return undefined;
  const line = head.split('\n')[0];
  if (line.includes('\r')) return undefined;
  const m = /^#!\s*(\S+)(?:\s+(.*))?$/.exec(line);
  if (!m) return undefined;
  const [, interpreter, rest] = m;
  if (!interpreter.startsWith('/')) {
    const resolved = path.join(osDir, interpreter);
    if (isExecutableFile(resolved)) return undefined;
    return {
      code: 'interpreter-relative',
      message: `names a relative interpreter ('#!${interpreter}'): the kernel looks for it in the working directory, which Ganeti makes the OS directory, and there is no executable ${resolved}; give its full path (#!/bin/${path.basename(interpreter)}, #!/usr/bin/env ${path.basename(interpreter)})`,
    };
  }
  if (!isExecutableFile(interpreter)) {
    return { code: 'interpreter-missing', message: `runs with ${interpreter}, which does not exist (or cannot be executed) on this machine` };
  }
  if (path.basename(interpreter) === 'env' && rest) {
    // The kernel passes everything after the interpreter as one argument (unless env -S splits it).
    const words = rest.trim().split(/\s+/);
    const split = words[0] === '-S' || words[0].startsWith('-S');
    const cmd = split ? (words[0] === '-S' ? words[1] : words[0].slice(2)) : rest.trim();
    if (cmd && !cmd.startsWith('-') && !cmd.includes('=')) {
      const dirs = GANETI_DEFAULTS.hooksPath.split(':');
      const found = cmd.includes('/') ? isExecutableFile(path.resolve(osDir, cmd)) : dirs.some((d) => isExecutableFile(path.join(d, cmd)));
      if (!found) {
        return {
          code: 'interpreter-missing',
          message: `runs '${cmd}' through ${interpreter}, and there is no ${JSON.stringify(cmd)} on the PATH Ganeti gives scripts (${GANETI_DEFAULTS.hooksPath}) on this machine`,
        };
      }
    }
  }
  return undefined;
}

/** Executable `#!` files of the definition (not its scripts), to depth 2, hidden ones left out. */
function helperFiles(dir: string): string[] {
  const out: string[] = [];
  walkFiles(dir, { maxDepth: 2, followLinkedDirs: true }, (rel, st) => {
    if (OS_SCRIPTS.includes(rel)) return;
    if (st.isFile() && (st.mode & 0o111) !== 0 && st.size < 4 * 1024 * 1024) out.push(rel);
  });
  return out;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Helpers the scripts execute (their path appears as a command in the shell code: `./x.py`,
 * `"$GOS_DIR/x.py"`, `$(dirname "$0")/x.py`) whose own `#!` interpreter cannot be executed: the
 * step that runs them fails on every node like this one.
 */
export function helperInterpreterFindings(def: Pick<OsDefinition, 'dir'>): Problem[] {
  const out: Problem[] = [];
  const texts = shellTexts(def.dir);
  for (const rel of helperFiles(def.dir)) {
    const h = readHead(path.join(def.dir, rel));
    if (!h?.startsWith('#!')) continue;
    const first = h.split('\n')[0];
    const bad = first.endsWith('\r')
      ? { message: `has a CR (\\r) at the end of its '#!' line, so its interpreter "${first.slice(2).trim()}\\r" does not exist` }
      : interpreterProblem(h, def.dir);
    if (!bad) continue;
    // Run as a command: at the start of a command, after a path prefix ending in "/".
    const re = new RegExp(`(?:^|[;&|({\`]|\\bthen|\\bdo|\\belse|\\$\\()\\s*(?:exec\\s+|command\\s+)?(?:["']?[^\\s"'#;&|]*/)?${escapeRe(rel)}(?=["']?(?:\\s|$|[;&|)]))`, 'm');
    for (const t of texts) {
      const lines = t.text.split('\n');
      const i = lines.findIndex((l) => !/^\s*#/.test(l) && re.test(l));
      if (i < 0) continue;
      out.push({
        severity: 'error',
        code: 'helper-interpreter-missing',
        message: `${t.rel} line ${i + 1} runs ${rel}, which ${bad.message}: the kernel cannot execute it, so every operation that reaches that line fails`,
        file: rel,
        line: 1,
      });
      break;
    }
  }
  return out;
}

/** Interpreters a helper may be handed to (`bash ./x.sh`, `python3 ./x.py`): a missing file fails there too. */
const HELPER_RUNNERS = String.raw`(?:(?:/usr)?/bin/)?(?:bash|sh|dash|python3?|perl)`;

/**
 * Helpers the scripts execute from the definition's own directory that do not exist there (nor
 * as a symlink that resolves): `./gnt-helper.py`, `"$(dirname "$0")/lib/helper.sh"`,
 * `"$GOS_DIR/x"` or `"$DIR/x"` with DIR the script's directory, at the start of a command (also
 * after exec, command, or an interpreter: `bash ./x.sh`). The shell answers "No such file or
 * directory" (status 127, or the interpreter's own) on every node like this one. Read from the
 * scripts and the files they source; a path tested first (`[ -x ./hook ] && ./hook`) and a
 * `./x` after a `cd` in the same file are left out (the working directory is no longer the OS
 * directory). An error only when the run is unconditional: at the top level of a file (not
 * after && or ||, not inside an if, case or loop), or in a function called so from there
 * (runContexts); else a warning saying when it runs.
 */
export function helperMissingFindings(def: Pick<OsDefinition, 'dir'>): Problem[] {
  const out: Problem[] = [];
  const all = shellTexts(def.dir);
  const runs = new Set<string>([...OS_SCRIPTS, ...sourcedFiles(def.dir).map((f) => f.rel)]);
  const texts = all.filter((t) => runs.has(t.rel));
  const dirVars = [...scriptDirVariables(all)].map(escapeRe).join('|');
  const start = String.raw`(?:^|[;&|({\`]|\bthen\b|\bdo\b|\belse\b|\$\()\s*(?:(?:exec|command|sudo)\s+)?(?:(?<runner>${HELPER_RUNNERS})\s+)?`;
  const sub = String.raw`\$\((?:[^()]|\([^()]*\))*\)`;
  const forms = [
    // ./path (relative to the OS directory, where Ganeti runs every script)
    { re: new RegExp(`${start}["']?\\./(?<p>[\\w.+-]+(?:/[\\w.+-]+)*)["']?(?=\\s|$|[;&|)])`, 'g'), kind: 'cwd' as const },
    // "$(dirname "$0")/path", "$(dirname "$(readlink -f "$0")")/path"
    { re: new RegExp(`${start}["']?(?<x>${sub})["']?/(?<p>[\\w.+-]+(?:/[\\w.+-]+)*)["']?(?=\\s|$|[;&|)])`, 'g'), kind: 'sub' as const },
    // "$DIR/path" with DIR the script's directory
    { re: new RegExp(`${start}["']?\\$\\{?(?<x>${dirVars})\\}?["']?/(?<p>[\\w.+-]+(?:/[\\w.+-]+)*)["']?(?=\\s|$|[;&|)])`, 'g'), kind: 'var' as const },
  ];
  const reported = new Set<string>();
  const contexts = runContexts(texts);
  for (const t of texts) {
    const lines = t.text.split('\n');
    const where = contexts.get(t.rel)!;
    let cdSeen = false;
    let heredoc: string | undefined;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      // A here-document's body is data (a file written for the instance, a chroot's script).
      if (heredoc !== undefined) {
        if (line.replace(/^\t+/, '') === heredoc) heredoc = undefined;
        continue;
      }
      const hd = line.includes('<<') ? /<<-?\s*(["']?)([A-Za-z_]\w*)\1/.exec(line.replace(/^\s*#.*$/, '')) : null;
      if (hd) heredoc = hd[2];
      if (/^\s*#/.test(line)) continue;
      if (/(?:^|[;&|(]|\bthen|\bdo)\s*(?:cd|pushd)\s/.test(line)) cdSeen = true;
      // Every form runs a path with a '/' in it.
      if (!line.includes('/')) continue;
      for (const f of forms) {
        f.re.lastIndex = 0;
        for (const m of line.matchAll(f.re)) {
          const g = m.groups ?? {};
          let rel = g.p;
          if (f.kind === 'cwd') {
            if (cdSeen) continue;
          } else if (f.kind === 'sub') {
            if (!/dirname\b/.test(g.x) || !/\$(?:0\b|\{0\}|\{?BASH_SOURCE)/.test(g.x)) continue;
            // BASH_SOURCE names the sourced file itself; $0 the script, in the OS directory.
            rel = path.posix.join(/BASH_SOURCE/.test(g.x) ? path.posix.dirname(t.rel) : '.', g.p);
          }
          rel = path.posix.normalize(rel);
          if (rel.startsWith('..') || reported.has(rel)) continue;
          const abs = path.join(def.dir, rel);
          if (fs.existsSync(abs)) {
            // Run directly (not handed to an interpreter), it needs an execute bit: else 126.
            if (!m.groups?.runner && isFile(abs) && !isExecutableFile(abs)) {
              reported.add(rel);
              out.push({
                severity: 'error',
                code: 'helper-not-executable',
                message: `${t.rel} line ${i + 1} runs ${rel}, which is not executable (mode ${(fs.statSync(abs).mode & 0o777).toString(8).padStart(4, '0')}): the shell fails there ("Permission denied", status 126), so every operation that reaches that line fails; chmod 0755 ${rel}`,
                file: rel,
                line: i + 1,
              });
            }
            continue;
          }
          // A guarded run: the path is tested somewhere in the file (`[ -x "$DIR/hook" ] && ...`).
          const base = escapeRe(path.posix.basename(rel));
          if (new RegExp(String.raw`(?:\[\[?|\btest)\s+!?\s*-[efrxs]\s+[^\]\n;&|]*${base}\b`).test(t.text)) continue;
          reported.add(rel);
          const only = where.conditionAt(i, (m.index ?? 0) + m[0].length);
          out.push(
            only
              ? {
                  severity: 'warning',
                  code: 'helper-missing',
                  message: `${t.rel} line ${i + 1} runs ${rel}, which does not exist in the definition, but it runs only ${only}: where it runs, the shell fails there ("No such file or directory", status 127)`,
                  file: t.rel,
                  line: i + 1,
                }
              : {
                  severity: 'error',
                  code: 'helper-missing',
                  message: `${t.rel} line ${i + 1} runs ${rel}, which does not exist in the definition: the shell fails there ("No such file or directory", status 127), so every operation that reaches that line fails`,
                  file: t.rel,
                  line: i + 1,
                },
          );
        }
      }
    }
  }
  return out;
}

/**
 * CR line ends in a shell script's body that make it fail, not just look odd: the first line
 * that does, what happens, or undefined. Lines after the `#!` line: `set` given an option that
 * ends in CR (dash refuses it and exits; bash reports it and goes on), `exit N` (numeric argument required: status
 * 2), `.`/`source` of a file whose name then ends in CR (not found), or a last command of one
 * word (command not found, 127). A syntax error they cause is bash -n's to report.
 */
export function crlfFailure(text: string, shell: 'bash' | 'sh' = 'sh'): { line: number; text: string; why: string } | undefined {
  const lines = text.split('\n');
  let lastCommand = -1;
  for (let i = 1; i < lines.length; i++) {
    const body = lines[i].replace(/\r$/, '').trim();
    if (body !== '' && !body.startsWith('#')) lastCommand = i;
  }
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    if (!l.endsWith('\r')) continue;
    const body = l.slice(0, -1).trim();
    if (body === '' || body.startsWith('#')) continue;
    const words = body.split(/\s+/);
    const last = words[words.length - 1];
    const shown = body;
    // bash (not in POSIX mode) reports the bad option and goes on; sh (dash) exits.
    if (shell === 'sh' && words[0] === 'set' && words.length > 1 && (/^[-+]/.test(last) || /^[-+]o$/.test(words[words.length - 2] ?? ''))) {
      return { line: i + 1, text: shown, why: `gives set the option ${JSON.stringify(`${last}\r`)}, which the shell refuses, and exits` };
    }
    if (words[0] === 'exit' && words.length === 2 && /^\d+$/.test(last)) {
      return { line: i + 1, text: shown, why: `gives exit ${JSON.stringify(`${last}\r`)}, not a number ("numeric argument required": the script exits with status 2)` };
    }
    if ((words[0] === '.' || words[0] === 'source') && words.length >= 2) {
      return { line: i + 1, text: shown, why: `sources a file whose name ends in CR, which does not exist` };
    }
    if (i === lastCommand && words.length === 1 && /^[A-Za-z_][\w.-]*$/.test(body)) {
      return { line: i + 1, text: shown, why: `is its last command, ${JSON.stringify(`${body}\r`)}, which does not exist (status 127)` };
    }
  }
  return undefined;
}

/**
 * A byte-order mark at the start of a list file Ganeti reads: it stays part of the first entry
 * (Python's utf-8 codec keeps U+FEFF, and it is not whitespace to strip()). variants.list: the
 * first variant, the default, is refused by its name; parameters.list: the first parameter
 * cannot be set by its name. A warning otherwise (ganeti_api_version: Ganeti's verdict says it; a
 * file the API level makes Ganeti ignore).
 */
export function bomFinding(def: Pick<OsDefinition, 'name' | 'maxApiVersion' | 'variants' | 'parameterFields' | 'verdict'>, file: string): Problem {
  const maxv = def.maxApiVersion ?? 0;
  const warning: Problem = { severity: 'warning', code: 'bom', message: `${file} starts with a byte-order mark (U+FEFF): Ganeti reads it as part of the first line`, file, line: 1 };
  if (!def.verdict.valid) return warning;
  if (file === OS_VARIANTS_FILE && maxv >= OS_API_V15) {
    const first = def.variants[0];
    if (first === undefined || !first.startsWith('\ufeff')) return warning;
    const plain = first.slice(1);
    return {
      severity: 'error',
      code: 'bom',
      message: `${file} starts with a byte-order mark (U+FEFF): Ganeti reads the first variant, the default, as ${pyReprStr(first)}, so ${def.name}+${plain} is refused ("OS '${def.name}' does not support variant '${plain}'")`,
      file,
      line: 1,
    };
  }
  if (file === OS_PARAMETERS_FILE && maxv >= OS_API_V20) {
    const first = def.parameterFields[0]?.[0];
    if (first === undefined || !first.startsWith('\ufeff')) return warning;
    const plain = first.slice(1);
    return {
      severity: 'error',
      code: 'bom',
      message: `${file} starts with a byte-order mark (U+FEFF): Ganeti reads the first parameter as ${pyReprStr(first)}, so giving ${plain} (-O ${plain}=...) is refused ("The following parameters are not supported by the OS ${def.name}: ${plain}")`,
      file,
      line: 1,
    };
  }
  return warning;
}

/**
 * Shell files the scripts source (sourcedFiles) saved as UTF-16 or with a UTF-8 byte-order mark:
 * the shell reads the mark (and, for UTF-16, the bytes around its NULs) as part of the first
 * command, which is not found (status 127). An error when a script runs under `set -e` (the
 * script stops there), else a warning.
 */
export function sourcedEncodingFindings(def: Pick<OsDefinition, 'dir'>): Problem[] {
  const out: Problem[] = [];
  const texts = shellTexts(def.dir);
  const errexit = texts.some((t) => OS_SCRIPTS.includes(t.rel) && (/^\s*set\s+(?:-\w*e\w*|-o\s+errexit)\b/m.test(t.text) || /^#!\S+\s+-\w*e/.test(t.text)));
  const seen = new Set<string>();
  for (const src of sourcedFiles(def.dir)) {
    if (seen.has(src.rel)) continue;
    seen.add(src.rel);
    const head = readHead(path.join(def.dir, src.rel));
    if (head === undefined) continue;
    const encoding = head.startsWith('\xff\xfe') ? 'UTF-16 (little-endian, byte-order mark FF FE)' : head.startsWith('\xfe\xff') ? 'UTF-16 (big-endian, byte-order mark FE FF)' : head.startsWith('\xef\xbb\xbf') ? 'UTF-8 with a byte-order mark (EF BB BF)' : undefined;
    if (!encoding) continue;
    out.push({
      severity: errexit ? 'error' : 'warning',
      code: 'sourced-encoding',
      message: `${src.by} line ${src.line} sources ${src.rel}, which is encoded as ${encoding}: the shell reads the mark as part of its first command, which is not found (status 127)${errexit ? ', and under set -e the script stops there' : ''}; save it as UTF-8 without a byte-order mark`,
      file: src.rel,
      line: 1,
    });
  }
  return out;
}

/**
 * Configuration files of the definition the scripts source by a name with a variable in it (so
 * not in sourcedFiles): defaults.conf and the variant configurations (variants/*.conf, or where
 * variantConfigSource finds the scripts read them inside the definition).
 */
function configFiles(dir: string): { rel: string; by?: undefined; line?: undefined }[] {
  const out = new Set<string>();
  if (isFile(path.join(dir, 'defaults.conf'))) out.add('defaults.conf');
  const src = variantConfigSource(shellTexts(dir));
  const varDirs = new Set<string>(['variants']);
  if (src?.relative && src.dir) varDirs.add(src.dir);
  for (const d of varDirs) {
    const ext = src?.relative && src.dir === d ? src.ext : '.conf';
    let names: string[];
    try {
      names = fs.readdirSync(path.join(dir, d)).sort();
    } catch {
      continue;
    }
    for (const n of names) if (ext && n.endsWith(ext) && isFile(path.join(dir, d, n))) out.add(`${d}/${n}`);
  }
  return [...out].map((rel) => ({ rel }));
}

/**
 * Files the scripts source with CR line ends that make them fail (crlfFailure: `exit 1\r`,
 * `. file\r`, `set -e\r` ...): the sourcing script fails as if the lines were its own. Other CRs
 * in them (and in defaults.conf and the variant configurations) are a warning naming the first
 * such line: the shell keeps the CR in each value (`SUITE=trixie\r` sets SUITE to "trixie\r"),
 * which breaks whatever uses it later (not proven through Ganeti's code, so never an error).
 */
export function sourcedCrlfFindings(def: Pick<OsDefinition, 'dir'>): Problem[] {
  const out: Problem[] = [];
  const seen = new Set<string>(OS_SCRIPTS);
  // The shell that sources them: bash when any script runs under bash (as shellSyntaxFindings).
  const shell = OS_SCRIPTS.some((sc) => shellOf(readHead(path.join(def.dir, sc)) ?? '') === 'bash') ? 'bash' : 'sh';
  for (const src of [...sourcedFiles(def.dir), ...configFiles(def.dir)]) {
    if (seen.has(src.rel)) continue;
    seen.add(src.rel);
    let text: string;
    try {
      const p = path.join(def.dir, src.rel);
      if (!fs.statSync(p).isFile() || fs.statSync(p).size > 1024 * 1024) continue;
      text = fs.readFileSync(p, 'latin1');
    } catch {
      continue;
    }
    if (!text.includes('\r')) continue;
    // crlfFailure reads from the second line on (the first is a script's #!): give it one.
    const fatal = crlfFailure(`\n${text}`, shell);
    if (!fatal) {
      const lines = text.split('\n');
      // The first assignment that gets a CR, else the first line with one.
      const assigns = lines.findIndex((l) => l.endsWith('\r') && /^\s*(?:export\s+)?[A-Za-z_]\w*=/.test(l));
      const i = assigns >= 0 ? assigns : lines.findIndex((l) => l.includes('\r'));
      const body = lines[i].replace(/\r$/, '');
      const set = /^\s*(?:export\s+)?([A-Za-z_]\w*)=(.*)$/.exec(body);
      const value = set ? set[2].replace(/^(["'])(.*)\1$/, '$2') : '';
      out.push({
        severity: 'warning',
        code: 'crlf',
        message: `${src.rel}${src.by ? `, which ${src.by} line ${src.line} sources,` : ''} has CR (\\r) line ends (line ${i + 1}: ${JSON.stringify(body)}): the shell keeps the CR as part of each command${set && !value.includes('$') ? `, so ${set[1]} is ${JSON.stringify(`${value}\r`)}` : ''}; write plain LF lines`,
        file: src.rel,
        line: i + 1,
      });
      continue;
    }
    out.push({
      severity: 'error',
      code: 'crlf',
      message: `${src.rel}, which ${src.by} line ${src.line} sources, has CR (\\r) line ends: line ${fatal.line - 1} (${JSON.stringify(fatal.text)}) ${fatal.why}, so the script fails`,
      file: src.rel,
      line: fatal.line - 1,
    });
  }
  return out;
}
