/**
 * Which definition a command acts on, as git finds its repository: the directory given, else
 * the current directory or the nearest one above it that holds a definition.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Context } from '../context';
import { PROVENANCE_FILE } from '../definition/provenance';
import { OS_API_FILE } from '../ganeti/rules';

/** True when `dir` holds ganeti_api_version or .ganeti-os.json (whatever their state). */
function holdsDefinition(dir: string): boolean {
  return [OS_API_FILE, PROVENANCE_FILE].some((f) => fs.existsSync(path.join(dir, f)));
}

/**
 * The nearest directory from `start` up to `/` that holds a definition (ganeti_api_version or
 * .ganeti-os.json), or undefined when none does.
 */
export function findDefinitionDir(start: string): string | undefined {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    if (holdsDefinition(dir)) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * The absolute definition directory for a command: `given` (--os-dir or the command's
 * argument) resolved against the current directory and taken as it is; without one, the
 * current directory or, from inside a definition (`debian-os/lib`), the definition above it,
 * which the command then names on stderr. With no definition anywhere above, the current
 * directory: the command says it is not one.
 */
export function definitionDir(ctx: Pick<Context, 'cwd' | 'log'>, given?: string): string {
  if (given !== undefined) return path.resolve(ctx.cwd, given);
  const cwd = path.resolve(ctx.cwd);
  const found = findDefinitionDir(cwd);
  if (!found) return cwd;
  if (found !== cwd) ctx.log.info(`Working on the OS definition ${found} (found above the current directory).`);
  return found;
}
