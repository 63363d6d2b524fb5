/**
 * Syntax checks of a definition's shell files in one bash process: for each file, a subshell
 * (a fork of that bash, no new program) sources the file's text behind a `set -n` line, so the
 * text is parsed as `bash -n FILE` parses it and nothing in it runs (noexec is set before the
 * first line of the file is read; the text reaches bash as data, never as part of its own
 * script). A clean definition costs one bash instead of one per file. Files run by /bin/sh get
 * `sh -n FILE` each (no template of ours has one).
 */
import { spawnSync } from 'node:child_process';

export interface SyntaxError {
  /** The shell that found it: 'bash' or 'sh'. */
  shell: 'bash' | 'sh';
  /** The file, relative to the definition (or absolute, for files on the node). */
  rel: string;
  /** What `bash -n FILE` (or `sh -n FILE`) prints for it: `FILE: line N: ...`. */
  message: string;
}

/**
 * For each file given: its text behind `set -n`, sourced in a subshell; the files whose parse
 * failed, with the messages, NUL-separated. `$(< f)` reads without running anything either.
 */
const BASH_CHECK = `for f; do m=$( ( source /dev/stdin <<< "set -n"$'\\n'"$(< "$f")" ) 2>&1 ) || printf '%s\\0%s\\0' "$f" "$m"; done`;
const SH_CHECK = `for f; do m=$(sh -n "$f" 2>&1) || printf '%s\\0%s\\0' "$f" "$m"; done`;

/**
 * The syntax errors of `files` (path relative to `dir`, or absolute for files on the node →
 * the shell that runs or sources it), word for word as `bash -n FILE` / `sh -n FILE` run in
 * `dir` report them, in the order of `files`. Nothing is reported when bash cannot run.
 */
export function shellSyntaxErrors(dir: string, files: Map<string, 'bash' | 'sh'>): SyntaxError[] {
  const out: SyntaxError[] = [];
  const of = (shell: 'bash' | 'sh') => [...files].filter(([, s]) => s === shell).map(([rel]) => rel);
  for (const shell of ['bash', 'sh'] as const) {
    const list = of(shell);
    if (!list.length) continue;
    const r = spawnSync('bash', ['-c', shell === 'bash' ? BASH_CHECK : SH_CHECK, 'bash', ...list], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 30000,
    });
    if (r.error) continue;
    const f = r.stdout.split('\0');
    for (let i = 0; i + 1 < f.length; i += 2) {
      const rel = f[i];
      // The sourced text is one line longer (set -n) and named /dev/stdin.
      const message = shell === 'bash' ? f[i + 1].replace(/\/dev\/stdin: line (\d+):/g, (_m, n: string) => `${rel}: line ${Number(n) - 1}:`) : f[i + 1];
      out.push({ shell, rel, message: message.endsWith('\n') ? message : `${message}\n` });
    }
  }
  const order = [...files.keys()];
  return out.sort((a, b) => order.indexOf(a.rel) - order.indexOf(b.rel));
}
