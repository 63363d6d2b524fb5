/** `ganeti-os pack`: the definition as a Debian package (`ganeti-os-<name>_<version>_all.deb`). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Context } from '../context';
import { UsageError, withFsErrors } from '../errors';
import { requireDirectory } from '../definition/model';
import { LOCK_FILE, withLock } from '../definition/lock';
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
  // The release record is read, then rewritten: one pack (or maintenance command) at a time, or
  // two packs both read the old record and the second drops the first's release. A definition
  // this user cannot write gets no new record (nothing to lock against), only a rebuild.
  const lock = writable(osDir);
  const build = () =>
    withFsErrors(osDir, () =>
    buildPackage({
    osDir,
    outputDir: path.resolve(ctx.cwd, opts.output ?? '.'),
    version: opts.version,
    maintainer: opts.maintainer,
    env: ctx.env,
    mailDomain: mailDomain(),
    user: account(),
    now: sde !== undefined ? Number(sde) : Math.floor(Date.now() / 1000),
    locked: lock,
  }),
  );
  const r = lock
    ? await withLock(path.join(osDir, LOCK_FILE), osDir, build, {
        onWait: (owner) => ctx.log.info(`Waiting for another ganeti-os command (${owner}) to finish with ${osDir}...`),
      })
    : build();
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

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
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
