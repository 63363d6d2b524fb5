/**
 * Issue 21: edits of variants.list are line by line, so they keep the file's line ends: CRLF
 * (kept since a91c8c5) and CR (old Mac; Ganeti splitlines() reads it: an added line got LF), and a
 * line added gets the file's own terminator, for each maintenance command.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runInProcess, tempDir } from './helpers/cli';

let work: string;
beforeEach(() => {
  work = tempDir('variant-eol');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

async function definition(template: string, api = '20,15,10'): Promise<string> {
  const r = await runInProcess(['new', 'myos', '--template', template, '--api', api, '--yes'], { cwd: work });
  if (r.code !== 0) throw new Error(r.stderr);
  return path.join(work, 'myos');
}

const eols = (text: string) => [...text.matchAll(/\r\n|\r|\n/g)].map((m) => m[0]);

describe.each([
  ['CRLF', '\r\n'],
  ['CR', '\r'],
])('a %s variants.list', (_name, eol) => {
  const steps: [string, string[]][] = [
    ['add-variant', ['add-variant', 'zz']],
    ['add-variant --first', ['add-variant', 'zz', '--first']],
    ['add-variant of an existing one with --first', ['add-variant', 'second', '--first']],
    ['remove-variant', ['remove-variant', 'second']],
    ['add-param', ['add-param', 'size', 'Disk size']],
    ['bump-api 10 and back to 20', ['bump-api', '10', '--force']],
  ];
  it.each(steps)('%s keeps its line ends', async (_what, args) => {
    for (const template of ['blank', 'debian']) {
      fs.rmSync(path.join(work, 'myos'), { recursive: true, force: true });
      const dir = await definition(template);
      const file = path.join(dir, 'variants.list');
      fs.writeFileSync(file, ['# my variants', 'default', 'second', ''].join(eol));
      const r = await runInProcess([...args, '--os-dir', dir], { cwd: work });
      expect([template, r.code, r.stderr]).toEqual([template, 0, expect.any(String)]);
      if (args[0] === 'bump-api') expect((await runInProcess(['bump-api', '20', '--os-dir', dir, '--force'], { cwd: work })).code).toBe(0);
      const text = fs.readFileSync(file, 'utf8');
      expect([template, eols(text).every((e) => e === eol)]).toEqual([template, true]);
      expect(text.endsWith(eol)).toBe(true);
    }
  });
});
