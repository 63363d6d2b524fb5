/** Run the CLI in-process with a fake context; collect stdout, stderr and the exit code. */
import { main } from '../../src/main';
import type { Context } from '../../src/context';

export async function cli(cwd: string, args: string[], env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const ctx: Context = {
    cwd,
    env: { PATH: process.env.PATH, HOME: cwd, ...env },
    interactive: false,
    prompter: undefined as never,
    log: { info: (m) => err.push(m), warn: (m) => err.push(`warning: ${m}`) },
    out: { write: (t) => void out.push(t) },
  };
  const code = await main(args, ctx);
  return { code, stdout: out.join(''), stderr: err.join('\n') };
}
