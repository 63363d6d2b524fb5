/**
 * diagnose's `Variants:` line is in utils.NiceSort's order, as gnt-os diagnose prints it (the
 * query's variants field is NiceSorted; the node's own "[variants: ...]" keeps the file's order).
 * The order is held to Ganeti 3.0's own NiceSort.
 */
import { runSync } from '../src/system/process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { niceSort } from '../src/ganeti/diagnose';
import { cli, tempDir } from './helpers/cli';
import { def, writeCase } from './helpers/corpus';
import { GANETI_PYTHON, describeSystem, ganetiPythonPath } from './helpers/system';

const LISTS: string[][] = [
  ['v10', 'v2', 'v1', 'v1a', 'v01'],
  ['bookworm', 'trixie', 'Bookworm', 'bullseye', '12', '9', 'a', ''],
  ['x1y2', 'x1y10', 'x10y1', 'x2', 'x', 'x1'],
  ['1.2.10', '1.2.9', '1.10', '1.9.1', '1-9'],
  ['a1b2c3d4e5f6g7h8i9', 'a1b2c3d4e5f6g7h8i10', 'a1b2c3d4e5f6g7h8'],
  ['n\u0663', 'n2', 'n\u0661\u0660', 'n\uff15', 'n4'],
  ['99999999999999999999', '99999999999999999998', '1e5', '\u00e9', 'z', '\ud83d\ude00', '\uffff'],
];

it('niceSort: digits compare as numbers, absent groups first, numbers before words', () => {
  expect(niceSort(['v10', 'v2', 'v1'])).toEqual(['v1', 'v2', 'v10']);
  expect(niceSort(['a', '10', '9', 'a1'])).toEqual(['9', '10', 'a', 'a1']);
});

describeSystem("diagnose's Variants line in Ganeti's NiceSort order", { ganeti: true }, () => {
  it.each(LISTS.map((l) => [JSON.stringify(l), l] as const))('%s: the order of Ganeti 3.0 utils.NiceSort', (_s, list) => {
    const r = runSync([GANETI_PYTHON, '-c', 'import json, sys\nfrom ganeti.utils import NiceSort\nprint(json.dumps(NiceSort(json.load(sys.stdin))))'], {
      input: JSON.stringify(list),
      env: { PATH: '/usr/bin:/bin', PYTHONPATH: ganetiPythonPath('3.0') },
    });
    expect(r.status).toBe(0);
    expect(niceSort(list)).toEqual(JSON.parse(r.stdout));
  });

  it('diagnose prints the Variants line sorted and the node line in file order', async () => {
    const root = tempDir('nicesort');
    try {
      writeCase(root, { name: 'sorted', files: def({ 'variants.list': 'v10\nv2\nv1\n' }) });
      const r = await cli(root, ['diagnose', root]);
      expect(r.stdout).toContain('  Variants: [v1, v2, v10]\n');
      expect(r.stdout).toContain('[variants: v10, v2, v1]');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
