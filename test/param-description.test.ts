/** A parameter description holding any line break Python's str.splitlines() knows is refused, naming it. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { read, runInProcess, tempDir } from './helpers/cli';

// Every character str.splitlines() ends a line at (Python docs, "str.splitlines").
const BREAKS: [string, string][] = [
  ['\n', 'U+000A'], ['\r', 'U+000D'], ['\u000b', 'U+000B'], ['\u000c', 'U+000C'], ['\u001c', 'U+001C'],
  ['\u001d', 'U+001D'], ['\u001e', 'U+001E'], ['\u0085', 'U+0085'], ['\u2028', 'U+2028'], ['\u2029', 'U+2029'],
];

let work: string;
beforeEach(() => {
  work = tempDir('param-desc');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

describe('parameter descriptions are one line as Ganeti splits lines', () => {
  it.each(BREAKS.map(([c, code]) => [code, c]))('add-param refuses a description holding %s, naming it', async (code, c) => {
    expect((await runInProcess(['new', 'myos', '--template', 'blank', '--yes'], { cwd: work })).code).toBe(0);
    const dir = path.join(work, 'myos');
    const before = read(path.join(dir, 'parameters.list'));
    const r = await runInProcess(['add-param', 'size', `Disk${c}size`, '--os-dir', dir], { cwd: work });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('single line');
    expect(r.stderr).toContain(code);
    expect(read(path.join(dir, 'parameters.list'))).toBe(before);
  });

  it.each(BREAKS.map(([c, code]) => [code, c]))('new --param refuses a description holding %s, naming it', async (code, c) => {
    const r = await runInProcess(['new', 'myos', '--template', 'blank', '--yes', '--param', `size=Disk${c}size`], { cwd: work });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(code);
    expect(fs.existsSync(path.join(work, 'myos'))).toBe(false);
  });

  it('a description with a tab or a no-break space is still accepted', async () => {
    expect((await runInProcess(['new', 'myos', '--template', 'blank', '--yes'], { cwd: work })).code).toBe(0);
    const dir = path.join(work, 'myos');
    const r = await runInProcess(['add-param', 'size', 'Disk\tsize\u00a0here', '--os-dir', dir], { cwd: work });
    expect(r.code).toBe(0);
    expect(read(path.join(dir, 'parameters.list'))).toContain('size Disk\tsize\u00a0here');
  });
});
