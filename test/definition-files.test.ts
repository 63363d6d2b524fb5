/**
 * One reader of a definition's files (readTextFile): maintenance and upgrade read a file the
 * same way — its bytes as they are, line ends and all — so an edit changes only what it was
 * asked to change.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runAddVariant } from '../src/commands/add-variant';
import type { NewOptions } from '../src/commands/new';
import { readTextFile } from '../src/definition/model';
import { newDefinitionInProcess, read, runCommand, tempDir } from './helpers/cli';
import { age, fixture, upgrade } from './helpers/upgrade';

let work: string;
beforeEach(() => {
  work = tempDir('files');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

const newDef = (name: string, more: Partial<NewOptions> = {}): Promise<string> => newDefinitionInProcess(work, name, more);

describe('maintenance edits a file with CRLF line ends line by line, keeping them', () => {
  it('add-variant on a variants.list written with CRLF: the old lines keep theirs, the new one gets CRLF', async () => {
    const d = await newDef('crlf', { template: 'blank' });
    fs.writeFileSync(path.join(d, 'variants.list'), '# Variants\r\ndefault\r\n');
    const r = await runCommand(runAddVariant, d, { variant: 'extra' });
    expect(r.code).toBe(0);
    expect(read(path.join(d, 'variants.list'))).toBe('# Variants\r\ndefault\r\nextra\r\n');
  });

  it('add-variant --set on a variant configuration written with CRLF changes one line only', async () => {
    const d = await newDef('crlfconf');
    const conf = path.join(d, 'variants', 'bookworm.conf');
    const crlf = read(conf).replace(/\n/g, '\r\n');
    fs.writeFileSync(conf, crlf);
    const r = await runCommand(runAddVariant, d, { variant: 'bookworm', set: ['MIRROR=http://deb.example/debian'] });
    expect(r.code).toBe(0);
    expect(read(conf)).toBe(crlf.replace(/^# MIRROR=\r$/m, 'MIRROR=http://deb.example/debian\r'));
  });
});

describe('readTextFile', () => {
  it('reads a regular file as it is (a BOM and CR kept), and says why it cannot read anything else', () => {
    const d = tempDir('read');
    try {
      fs.writeFileSync(path.join(d, 'bom'), '\ufeffa\r\nb');
      fs.writeFileSync(path.join(d, 'bad'), Buffer.from([0x61, 0xff]));
      fs.mkdirSync(path.join(d, 'dir'));
      fs.symlinkSync(path.join(d, 'nowhere'), path.join(d, 'dangling'));
      fs.symlinkSync(path.join(d, 'bom'), path.join(d, 'link'));
      expect(readTextFile(path.join(d, 'bom'))).toMatchObject({ kind: 'file', exists: true, text: '\ufeffa\r\nb', isSymlink: false });
      expect(readTextFile(path.join(d, 'link'))).toMatchObject({ kind: 'file', text: '\ufeffa\r\nb', isSymlink: true, realPath: path.join(d, 'bom') });
      expect(readTextFile(path.join(d, 'none'))).toMatchObject({ kind: 'missing', exists: false });
      expect(readTextFile(path.join(d, 'bad'))).toMatchObject({ kind: 'other', problem: 'not valid UTF-8' });
      expect(readTextFile(path.join(d, 'dir'))).toMatchObject({ kind: 'other', problem: 'not a regular file' });
      expect(readTextFile(path.join(d, 'dangling'))).toMatchObject({ kind: 'other', problem: `a symlink to ${path.join(d, 'nowhere')}, which does not exist` });
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('upgrade reads a file as maintenance does', () => {
  it("keeps the BOM the admin's editor added to a file the template changed since", async () => {
    const { dir, work: w } = fixture('blank');
    try {
      expect((await upgrade(dir)).code).toBe(0);
      const rel = 'README.md';
      // The template's README changed since it was written (its last line), and the admin's editor added a BOM.
      const old = age(dir, rel, (t) => t.replace(/\n([^\n]+)\n$/, '\n$1 (older)\n'));
      fs.writeFileSync(path.join(dir, rel), '\ufeff' + old);
      const r = await upgrade(dir);
      expect(r.code).toBe(0);
      const now = read(path.join(dir, rel));
      expect(now.startsWith('\ufeff')).toBe(true);
      expect(now).not.toMatch(/\(older\)/);
    } finally {
      fs.rmSync(w, { recursive: true, force: true });
    }
  });
});
