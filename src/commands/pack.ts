/** `ganeti-os pack`: the definition as a Debian package (`ganeti-os-<name>_<version>_all.deb`). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Context } from '../context';
import { UsageError, withFsErrors } from '../errors';
import { requireDirectory } from '../definition/model';
import { buildPackage } from '../package/build';
import { definitionDir } from './definition-dir';

export interface PackOptions {
  osDir?: string;
  version?: string;
  output?: string;
  maintainer?: string;
  json?: boolean;
}

export async function runPack(ctx: Context, opts: PackOptions): Promise<void> {
  const osDir = definitionDir(ctx, opts.osDir);
  requireDirectory(osDir);
  const sde = ctx.env.SOURCE_DATE_EPOCH;
  if (sde !== undefined && !/^\d+$/.test(sde)) throw new UsageError(`SOURCE_DATE_EPOCH must be a number of seconds, not '${sde}'`);
  const r = withFsErrors(osDir, () =>
    buildPackage({
    osDir,
    outputDir: path.resolve(ctx.cwd, opts.output ?? '.'),
    version: opts.version,
    maintainer: opts.maintainer,
    env: ctx.env,
    mailDomain: mailDomain(),
    user: account(),
    now: sde !== undefined ? Number(sde) : Math.floor(Date.now() / 1000),
  }),
  );
  for (const w of r.warnings) ctx.log.warn(w);
  for (const n of r.notes) ctx.log.info(`note: ${n}`);
  if (opts.json) {
    ctx.out.write(JSON.stringify(r, null, 2) + '\n');
    return;
  }
  ctx.log.info(
    `${r.newRelease ? 'Packed new version' : 'Rebuilt version'} ${r.version} of ${r.package}: ${r.bytes} bytes, ` +
      `${r.osPath}${r.conffiles.length ? `, ${r.conffiles.length} conffiles in /etc/ganeti/${path.basename(r.osPath)}/` : ''}` +
      `${r.depends.length ? `; Depends: ${r.depends.join(', ')}` : ''}`,
  );
  ctx.out.write(r.deb + '\n');
}

/** The account running pack: its login and the full name in its passwd entry (GECOS, first field). */
function account(): { login: string; fullName?: string } {
  let login: string;
  try {
    login = os.userInfo().username;
  } catch {
    return { login: `uid${process.getuid?.() ?? ''}` };
  }
  try {
    const entry = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${login}:`));
    const gecos = entry?.split(':')[4]?.split(',')[0]?.trim();
    return { login, ...(gecos ? { fullName: gecos } : {}) };
  } catch {
    return { login };
  }
}

/** Debian's mail domain: /etc/mailname, else the host name. */
function mailDomain(): string {
  try {
    const m = fs.readFileSync('/etc/mailname', 'utf8').trim();
    if (m) return m;
  } catch {
    // no mail system configured
  }
  return os.hostname();
}
