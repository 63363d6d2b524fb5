import * as fs from 'node:fs';
import * as path from 'node:path';

/** The package root: dist/.. when built, src/.. under ts-jest. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..');
export const TEMPLATES_DIR = path.join(PACKAGE_ROOT, 'templates');

let version: string | undefined;
export function toolVersion(): string {
  if (version === undefined) {
    version = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  }
  return version;
}

/** Whether `p` is `top` or lies below it (both absolute; compared as written, links not followed). */
export function isInside(p: string, top: string): boolean {
  const rel = path.relative(top, p);
  return rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}
