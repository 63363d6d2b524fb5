/**
 * Syntax checks of a definition's shell files in one bash process. Every bash file's text goes
 * into one script, each inside a function body of its own (`__gos_syntax_N() {` … `}`), and
 * `bash --pretty-print` parses it: like `bash -n` it runs nothing, and its output shows the
 * functions it found. When it parses and shows exactly __gos_syntax_0 … N-1 at the top level,
 * every file parsed on its own (a quote or heredoc left open in one file would have swallowed
 * the next one's function). Otherwise — a syntax error somewhere, or a bash without
 * --pretty-print (before 5.2) — each file gets `bash -n FILE` (one sh looping over them), whose
 * messages are the ones reported. Files run by /bin/sh always get `sh -n FILE` (no template of
 * ours has one). A clean definition costs one bash instead of one per file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSync } from '../system/process';
import { isFile } from './script-reading';

export interface SyntaxError {
  /** The shell that found it: 'bash' or 'sh'. */
  shell: 'bash' | 'sh';
  /** The file, relative to the definition (or absolute, for files on the node). */
  rel: string;
  /** What `bash -n FILE` (or `sh -n FILE`) prints for it: `FILE: line N: ...`. */
  message: string;
}

/** True when every text parses on its own, from one `bash --pretty-print`. */
function allParse(texts: string[], cwd: string): boolean {
  const script = texts.map((t, i) => `__gos_syntax_${i}() {\n:\n${t}${t === '' || t.endsWith('\n') ? '' : '\n'}}\n`).join('');
  const r = runSync(['bash', '--pretty-print'], { cwd, input: script, stderr: 'ignore', maxBuffer: 64 * 1024 * 1024, timeoutMs: 30000, killSignal: 'SIGTERM' });
  if (r.status !== 0) return false;
  const found = [...r.stdout.matchAll(/^__gos_syntax_(\d+) \(\)\s*$/gm)].map((m) => Number(m[1]));
  return found.length === texts.length && found.every((n, i) => n === i);
}

/**
 * The syntax errors of `files` (path relative to `dir`, or absolute for files on the node →
 * the shell that runs or sources it), word for word as `bash -n FILE` / `sh -n FILE` run in
 * `dir` report them, in the order of `files`. A file that cannot be read is left to the other
 * checks; nothing is reported when the shells cannot run.
 */
export function shellSyntaxErrors(dir: string, files: Map<string, 'bash' | 'sh'>): SyntaxError[] {
  const bash: string[] = [];
  const texts: string[] = [];
  const each: [string, string][] = [];
  for (const [rel, shell] of files) {
    // Only a regular file is read or handed to a shell: a FIFO or a device would block (the
    // other checks report what it is).
    if (!isFile(path.resolve(dir, rel))) continue;
    if (shell === 'sh') {
      each.push(['sh', rel]);
      continue;
    }
    try {
      texts.push(fs.readFileSync(path.resolve(dir, rel), 'utf8'));
      bash.push(rel);
    } catch {
      // unreadable: reported elsewhere
    }
  }
  if (bash.length && !allParse(texts, dir)) each.push(...bash.map((rel): [string, string] => ['bash', rel]));
  if (!each.length) return [];
  const r = runSync(['sh', '-c', 'while [ $# -gt 0 ]; do out=$("$1" -n "$2" 2>&1) || printf "%s\\0%s\\0%s\\0" "$1" "$2" "$out"; shift 2; done', 'sh', ...each.flat()], {
    cwd: dir,
    stderr: 'ignore',
    timeoutMs: 30000,
    killSignal: 'SIGTERM',
  });
  if (r.error || r.timedOut) return [];
  const out: SyntaxError[] = [];
  const f = r.stdout.split('\0');
  for (let i = 0; i + 2 < f.length; i += 3) out.push({ shell: f[i] as 'bash' | 'sh', rel: f[i + 1], message: `${f[i + 2]}\n` });
  const order = [...files.keys()];
  return out.sort((a, b) => order.indexOf(a.rel) - order.indexOf(b.rel));
}
