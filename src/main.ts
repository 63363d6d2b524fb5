/**
 * The one exit point: builds the context from the process, runs the command, and maps errors
 * to exit codes (usage 2, failure 1, cancelled 130, bug 70).
 */
import type { Context } from './context';
import { EXIT_BUG, EXIT_OK, EXIT_USAGE, GanetiOsError } from './errors';
import { toolVersion } from './paths';

type Runner = (ctx: Context, options: never) => Promise<void>;

/**
 * A module of ours (a command's, or the parser's), loaded when it is needed: its bundle
 * (dist/bundles/<name>.js, the module and all it loads in one file: scripts/bundle.js) when the
 * build made one, else the module itself (under ts-jest, a build without esbuild, a command that
 * is not bundled).
 */
function load<T = Record<string, Runner>>(module: string): T {
  let file = module;
  try {
    file = require.resolve(`./bundles/${module.slice(module.lastIndexOf('/') + 1)}`);
  } catch {
    // not bundled
  }
  return require(file) as T;
}

/** Command modules, loaded only when their command runs. */
const COMMANDS: Record<string, () => Runner> = {
  new: () => load('./commands/new').runNew,
  info: () => load('./commands/info').runInfo,
  'add-variant': () => load('./commands/add-variant').runAddVariant,
  'remove-variant': () => load('./commands/remove-variant').runRemoveVariant,
  'bump-api': () => load('./commands/bump-api').runBumpApi,
  'add-param': () => load('./commands/add-param').runAddParam,
  'remove-param': () => load('./commands/remove-param').runRemoveParam,
  validate: () => load('./commands/validate').runValidate,
  diagnose: () => load('./commands/diagnose').runDiagnose,
  run: () => load('./commands/run').runRun,
  pack: () => load('./commands/pack').runPack,
  rollout: () => load('./commands/rollout').runRollout,
  'nodes-check': () => load('./commands/nodes-check').runNodesCheck,
  upgrade: () => load('./commands/upgrade').runUpgrade,
  cluster: () => load('./commands/cluster').runCluster,
  template: () => load('./commands/template').runTemplate,
  test: () => load('./commands/test').runTest,
  completion: () => load('./commands/completion').runCompletion,
  __complete: () => load('./commands/complete').runComplete,
};

function isTty(fd: number): boolean {
  try {
    return require('node:tty').isatty(fd) as boolean;
  } catch {
    return false;
  }
}

export function processContext(): Context {
  const env = process.env;
  const interactive = isTty(0) && isTty(1) && !env.CI;
  return {
    cwd: process.cwd(),
    env,
    interactive,
    get prompter() {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const p = require('./prompter') as typeof import('./prompter');
      return interactive ? p.inquirerPrompter : p.noPrompter;
    },
    log: {
      info: (m: string) => process.stderr.write(m + '\n'),
      warn: (m: string) => process.stderr.write(`${colour('warning:', '33', env)} ${m}\n`),
    },
    out: { write: (t: string) => void process.stdout.write(t) },
    progress: isTty(2) ? (line: string) => void process.stderr.write(line ? `\r\u001b[K${line}` : '\r\u001b[K') : undefined,
    get stdio() {
      return { input: process.stdin, output: process.stdout };
    },
    uid: process.getuid?.(),
    interrupt: interruptSignal,
  };
}

let interruptController: AbortController | undefined;

/**
 * Ctrl-C, SIGTERM or SIGHUP (the terminal or ssh session closed) abort the signal (once): what
 * runs is stopped and released. A second one exits at once, saying that the release may still
 * be going on.
 */
function interruptSignal(): AbortSignal {
  if (!interruptController) {
    const c = new AbortController();
    interruptController = c;
    const on = (sig: NodeJS.Signals) => {
      if (c.signal.aborted) {
        try {
          process.stderr.write(`ganeti-os: ${sig} again: exiting without waiting; what was stopped may still be releasing its disks (see its log)\n`);
        } finally {
          process.exit(130);
        }
      }
      c.abort(new Error(`interrupted (${sig})`));
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
    process.on('SIGHUP', on);
  }
  return interruptController.signal;
}

function colour(text: string, code: string, env: Record<string, string | undefined>): string {
  if (env.NO_COLOR !== undefined || !isTty(2)) return text;
  return `\u001b[${code}m${text}\u001b[0m`;
}

export async function main(argv: string[], ctx: Context): Promise<number> {
  // `--version` alone needs no parser: answered before commander loads (a third of its start-up).
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    ctx.out.write(`${toolVersion()}\n`);
    return EXIT_OK;
  }
  const { buildProgram } = load<typeof import('./cli')>('./cli');
  const errWrite = (m: string) => ctx.log.info(m.replace(/\n$/, ''));
  const program = buildProgram(toolVersion(), async (command, options) => {
    const runner = COMMANDS[command];
    await runner()(ctx, options as never);
  });
  // The parser's errors read as the tool's own: "ganeti-os: error: unknown option '--x'".
  const output = {
    writeOut: (s: string) => ctx.out.write(s),
    writeErr: (s: string) => errWrite(s),
    outputError: (s: string, write: (s: string) => void) => write(`ganeti-os: ${s.replace(/^error:/, colour('error:', '31', ctx.env))}`),
  };
  // Every level of subcommand (`cluster up`, ...) writes through the context too.
  const configure = (cmds: readonly import('commander').Command[]): void => {
    for (const c of cmds) {
      c.configureOutput(output);
      configure(c.commands);
    }
  };
  configure([program]);
  // With --json, stdout is one document whose "ok" matches the exit status: what the command
  // prints is held until it ends, so that a failure (even after the document) can say so.
  const json = wantsJson(argv);
  const out = ctx.out;
  let held = '';
  if (json) ctx.out = { write: (t: string) => void (held += t) };
  let code: number;
  let failure: unknown;
  try {
    await program.parseAsync(argv, { from: 'user' });
    code = EXIT_OK;
  } catch (err) {
    failure = err;
    code = reportError(ctx, err);
  } finally {
    if (json) ctx.out = out;
  }
  if (json) out.write(code === EXIT_OK ? jsonSuccess(held) : jsonFailure(held, failure, code));
  return code;
}

/**
 * The one JSON document of a --json run that succeeded: the command's own document, with
 * "ok": true first when it does not say (info, new, the maintenance commands, upgrade), so that
 * every document's "ok" matches the exit status.
 */
function jsonSuccess(held: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(held);
  } catch {
    return held;
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc) || 'ok' in doc) return held;
  return JSON.stringify({ ok: true, ...(doc as Record<string, unknown>) }, null, 2) + '\n';
}

/** Whether `--json` is among the options (not after `--`). */
function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * The one JSON document of a --json run that failed with exit `code`: the command's own
 * document with "ok": false (and the error, when it has none), or {ok:false, error, exitCode}
 * when it printed none.
 */
function jsonFailure(held: string, err: unknown, code: number): string {
  const message = failureMessage(err, code);
  if (held.trim() !== '') {
    let doc: unknown;
    try {
      doc = JSON.parse(held);
    } catch {
      return held;
    }
    if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
      const obj = doc as Record<string, unknown>;
      const withError = obj.error === undefined && message ? { error: message } : {};
      return JSON.stringify({ ok: false, ...obj, ...('ok' in obj ? { ok: false } : {}), ...withError }, null, 2) + '\n';
    }
    return held;
  }
  return JSON.stringify({ ok: false, error: message || `failed (exit ${code})`, exitCode: code }, null, 2) + '\n';
}

function failureMessage(err: unknown, code: number): string {
  if (err instanceof GanetiOsError) return [err.message, ...err.details].filter((l) => l).join('\n');
  const e = err as { code?: string; message?: string };
  if (e && typeof e.code === 'string' && e.code.startsWith('commander.')) return String(e.message ?? '').replace(/^error:\s*/, '');
  if (code === EXIT_BUG) return `internal error: ${err instanceof Error ? err.message : String(err)}`;
  return err instanceof Error ? err.message : String(err);
}

export function reportError(ctx: Context, err: unknown): number {
  if (err instanceof GanetiOsError) {
    if (err.message) ctx.log.info(`ganeti-os: ${colour('error:', '31', ctx.env)} ${err.message}`);
    for (const d of err.details) ctx.log.info(d);
    return err.exitCode;
  }
  const e = err as { code?: string; exitCode?: number; name?: string };
  if (e && typeof e.code === 'string' && e.code.startsWith('commander.')) {
    // commander has already printed its message.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT_OK;
    return EXIT_USAGE;
  }
  const stack = err instanceof Error ? (err.stack ?? err.message) : String(err);
  ctx.log.info(`ganeti-os: internal error: ${stack}`);
  ctx.log.info('This is a bug in ganeti-os. Please report it with the command you ran and the lines above.');
  return EXIT_BUG;
}

/** Entry point for bin/ganeti-os.js. */
export async function run(argv: string[]): Promise<number> {
  // A reader that goes away early (`ganeti-os --help | head`) is not an error: stop quietly.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK);
    });
  }
  const ctx = processContext();
  const code = await main(argv, ctx);
  await new Promise<void>((resolve) => (process.stdout.writableLength ? process.stdout.once('drain', resolve) : resolve()));
  return code;
}

