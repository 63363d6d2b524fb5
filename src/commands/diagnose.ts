/**
 * `ganeti-os diagnose [search-dir...]`: what `gnt-os diagnose` says about this node, computed as
 * backend.DiagnoseOS computes it (src/ganeti/diagnose.ts), plus which entries an earlier
 * directory hides.
 */
import * as path from 'node:path';
import type { Context } from '../context';
import { SilentFailure, UserError } from '../errors';
import { OS_SEARCH_PATH } from '../ganeti/rules';
import { diagnoseOs, formatLikeGntOs } from '../ganeti/diagnose';
import { isDir } from '../ganeti/loader';
import { chooseRelease, followedText } from '../ganeti/releases';

export interface DiagnoseOptions {
  dirs?: string[];
  /** --ganeti: the release whose answer to give (default: chooseRelease's). */
  ganeti?: string;
  json?: boolean;
}

export async function runDiagnose(ctx: Context, opts: DiagnoseOptions): Promise<void> {
  // DiagnoseOS and the loader under it are the same in every supported release (see src/ganeti/rules.ts).
  const followed = chooseRelease(opts.ganeti);
  const dirs = opts.dirs && opts.dirs.length ? opts.dirs.map((d) => path.resolve(ctx.cwd, d)) : [...OS_SEARCH_PATH];
  const report = diagnoseOs(dirs);
  const bad = report.crash !== null || report.entries.some((e) => !e.valid);
  if (opts.json) {
    ctx.out.write(JSON.stringify({ ok: !bad, ganeti: followed.release, ...report }, null, 2) + '\n');
  } else {
    ctx.log.info(`following ${followedText(followed)}`);
    const explicit = !!(opts.dirs && opts.dirs.length);
    for (const s of report.skipped) if (explicit || !s.reason.startsWith('absent')) ctx.log.info(`${s.dir}: ${s.reason}`);
    ctx.out.write(formatLikeGntOs(report));
    if (!report.entries.length && !report.crash) ctx.log.info(`no OS definitions under ${dirs.join(', ')}`);
  }
  // Ganeti skips absent search directories silently; one named on the command line is a mistake.
  const missingGiven = opts.dirs && opts.dirs.length ? report.skipped.filter((s) => !isDir(s.dir)) : [];
  if (missingGiven.length) {
    throw new UserError(`no such search directory: ${missingGiven.map((s) => s.dir).join(', ')}`);
  }
  if (bad) throw new SilentFailure();
}
