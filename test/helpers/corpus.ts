/**
 * A corpus of broken and odd OS definitions, built from Ganeti's code (backend._TryOSFromDisk,
 * DiagnoseOS and the files they read): every case is one directory under a common root, so Ganeti's DiagnoseOS
 * can judge them all in one call. Cases whose files crash Ganeti's scan (non-UTF-8) go under
 * a separate root, one tryos call each.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mustRun } from './disks';

type Files = Record<string, string | Buffer | { mode?: number; content?: string | Buffer; dir?: true; symlink?: string; fifo?: true }>;

const SCRIPT = '#!/bin/sh\nexit 0\n';
const SCRIPTS = ['create', 'import', 'export', 'rename', 'verify'];

/** A complete API 20 definition; `over` replaces or (with null) removes files. */
export function def(over: Record<string, Files[string] | null> = {}): Files {
  const base: Files = {
    ganeti_api_version: '20\n15\n10\n',
    'variants.list': 'default\nminimal\n',
    'parameters.list': 'root-size Size of the root filesystem\nfilesystem The filesystem type\n',
  };
  for (const s of SCRIPTS) base[s] = { mode: 0o755, content: SCRIPT };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete base[k];
    else base[k] = v;
  }
  return base;
}

const exe = (content = SCRIPT, mode = 0o755) => ({ mode, content });

export interface CorpusCase {
  name: string;
  files: Files;
  /** Ganeti raises on this one (kept out of the DiagnoseOS batch). */
  crash?: boolean;
}

const long = 'x'.repeat(300);

export const CORPUS: CorpusCase[] = [
  { name: 'good', files: def() },
  { name: 'good-api15', files: def({ ganeti_api_version: '15\n', verify: null, 'parameters.list': null }) },
  { name: 'good-api10', files: def({ ganeti_api_version: '10\n', verify: null, 'parameters.list': null, 'variants.list': null }) },
  { name: 'api10-ignores-variants', files: def({ ganeti_api_version: '10\n', 'variants.list': 'a\nb\n', verify: null }) },
  { name: 'api10-ignores-bad-variants', files: def({ ganeti_api_version: '10\n', 'variants.list': Buffer.from([0xff, 0x0a]) }) },
  { name: 'api10-verify-not-exec', files: def({ ganeti_api_version: '10\n', verify: exe(SCRIPT, 0o644) }) },
  { name: 'api-missing', files: def({ ganeti_api_version: null }) },
  { name: 'api-dir', files: def({ ganeti_api_version: { dir: true } }) },
  { name: 'api-fifo', files: def({ ganeti_api_version: { fifo: true } }) },
  { name: 'api-empty', files: def({ ganeti_api_version: '' }) },
  { name: 'api-only-newline', files: def({ ganeti_api_version: '\n' }) },
  { name: 'api-trailing-blank', files: def({ ganeti_api_version: '20\n\n' }) },
  { name: 'api-leading-blank', files: def({ ganeti_api_version: '\n20\n' }) },
  { name: 'api-plus', files: def({ ganeti_api_version: '+20\n' }) },
  { name: 'api-spaces', files: def({ ganeti_api_version: ' 20 \n\t15\t\n' }) },
  { name: 'api-no-newline', files: def({ ganeti_api_version: '20' }) },
  { name: 'api-unsupported', files: def({ ganeti_api_version: '5\n' }) },
  { name: 'api-unsupported-many', files: def({ ganeti_api_version: '30\n25\n5\n' }) },
  { name: 'api-mixed-5', files: def({ ganeti_api_version: '20\n15\n10\n5\n' }) },
  { name: 'api-30-and-10', files: def({ ganeti_api_version: '30\n10\n' }) },
  { name: 'api-16-and-10', files: def({ ganeti_api_version: '16\n10\n', verify: null, 'parameters.list': null }) },
  { name: 'api-comment', files: def({ ganeti_api_version: '# api\n20\n' }) },
  { name: 'api-inline-comment', files: def({ ganeti_api_version: '20 # newest\n' }) },
  { name: 'api-crlf', files: def({ ganeti_api_version: '20\r\n15\r\n' }) },
  { name: 'api-cr', files: def({ ganeti_api_version: '20\r15\r' }) },
  { name: 'api-bom', files: def({ ganeti_api_version: '\ufeff20\n' }) },
  { name: 'api-underscore', files: def({ ganeti_api_version: '2_0\n' }) },
  { name: 'api-double-underscore', files: def({ ganeti_api_version: '2__0\n' }) },
  { name: 'api-arabic-digits', files: def({ ganeti_api_version: '\u0662\u0660\n' }) },
  { name: 'api-fullwidth-digits', files: def({ ganeti_api_version: '\uff12\uff10\n' }) },
  { name: 'api-nbsp', files: def({ ganeti_api_version: '\u00a020\u00a0\n' }) },
  { name: 'api-unit-sep', files: def({ ganeti_api_version: '20\u001f\n' }) },
  { name: 'api-formfeed', files: def({ ganeti_api_version: '\u000c20\n' }) },
  { name: 'api-vtab', files: def({ ganeti_api_version: '20\u000b15\n' }) },
  { name: 'api-line-sep', files: def({ ganeti_api_version: '20\u202815\n' }) },
  { name: 'api-nel', files: def({ ganeti_api_version: '20\u008515\n' }) },
  { name: 'api-two-on-a-line', files: def({ ganeti_api_version: '20 15\n' }) },
  { name: 'api-comma', files: def({ ganeti_api_version: '20,15\n' }) },
  { name: 'api-hex', files: def({ ganeti_api_version: '0x14\n' }) },
  { name: 'api-float', files: def({ ganeti_api_version: '20.0\n' }) },
  { name: 'api-leading-zero', files: def({ ganeti_api_version: '020\n' }) },
  { name: 'api-negative', files: def({ ganeti_api_version: '-20\n' }) },
  { name: 'api-minus-zero', files: def({ ganeti_api_version: '-0\n' }) },
  { name: 'api-huge', files: def({ ganeti_api_version: '123456789012345678901234567890\n' }) },
  { name: 'api-huge-and-10', files: def({ ganeti_api_version: '123456789012345678901234567890\n10\n' }) },
  { name: 'api-too-many-digits', files: def({ ganeti_api_version: '1'.repeat(4400) + '\n' }) },
  { name: 'api-long-garbage', files: def({ ganeti_api_version: long + '\n' }) },
  { name: 'api-quote', files: def({ ganeti_api_version: "it's\n" }) },
  { name: 'api-both-quotes', files: def({ ganeti_api_version: 'it\'s "x"\n' }) },
  { name: 'api-backslash', files: def({ ganeti_api_version: 'a\\b\n' }) },
  { name: 'api-control', files: def({ ganeti_api_version: '2\u00010\n' }) },
  { name: 'api-nul', files: def({ ganeti_api_version: '20\u0000\n' }) },
  { name: 'api-emoji', files: def({ ganeti_api_version: '20\u{1f600}\n' }) },
  { name: 'api-zero-width', files: def({ ganeti_api_version: '2\u200b0\n' }) },
  { name: 'api-latin1-text', files: def({ ganeti_api_version: 'v\u00e9rsion\n' }) },
  { name: 'api-dangling-symlink', files: def({ ganeti_api_version: { symlink: 'nowhere' } }) },
  { name: 'api-symlink', files: def({ ganeti_api_version: { symlink: 'real_api' }, real_api: '20\n' }) },
  { name: 'api-symlink-loop', files: def({ ganeti_api_version: { symlink: 'ganeti_api_version' } }) },
  { name: 'api-symlink-to-dir', files: def({ ganeti_api_version: { symlink: '.' } }) },
  { name: 'api-unreadable', files: def({ ganeti_api_version: { mode: 0o000, content: '20\n' } }) },
  { name: 'no-create', files: def({ create: null }) },
  { name: 'untrusted-only', files: def({ create: null, create_untrusted: exe() }) },
  { name: 'untrusted-and-trusted', files: def({ create_untrusted: exe() }) },
  { name: 'untrusted-not-exec', files: def({ create: null, create_untrusted: exe(SCRIPT, 0o644) }) },
  { name: 'untrusted-dir', files: def({ create_untrusted: { dir: true } }) },
  { name: 'create-not-exec', files: def({ create: exe(SCRIPT, 0o644) }) },
  { name: 'create-group-exec-only', files: def({ create: exe(SCRIPT, 0o654) }) },
  { name: 'create-owner-exec-only', files: def({ create: exe(SCRIPT, 0o744) }) },
  { name: 'create-exec-no-read', files: def({ create: exe(SCRIPT, 0o100) }) },
  { name: 'create-dir', files: def({ create: { dir: true } }) },
  { name: 'create-dangling', files: def({ create: { symlink: 'gone' } }) },
  { name: 'create-dangling-with-untrusted', files: def({ create: { symlink: 'gone' }, create_untrusted: exe() }) },
  { name: 'create-symlink', files: def({ create: { symlink: 'real_create' }, real_create: exe() }) },
  { name: 'create-symlink-loop', files: def({ create: { symlink: 'create' } }) },
  { name: 'create-fifo', files: def({ create: { fifo: true } }) },
  { name: 'create-no-shebang', files: def({ create: exe('exit 0\n') }) },
  { name: 'create-crlf', files: def({ create: exe('#!/bin/sh\r\nexit 0\r\n') }) },
  { name: 'export-missing', files: def({ export: null }) },
  { name: 'import-missing', files: def({ import: null }) },
  { name: 'rename-missing', files: def({ rename: null }) },
  { name: 'import-not-exec', files: def({ import: exe(SCRIPT, 0o644) }) },
  { name: 'rename-dir', files: def({ rename: { dir: true } }) },
  { name: 'export-dangling', files: def({ export: { symlink: '/nonexistent/export' } }) },
  { name: 'export-and-create-missing', files: def({ export: null, create: null }) },
  { name: 'verify-missing', files: def({ verify: null }) },
  { name: 'verify-not-exec', files: def({ verify: exe(SCRIPT, 0o600) }) },
  { name: 'verify-missing-api15', files: def({ ganeti_api_version: '15\n10\n', verify: null }) },
  { name: 'parameters-missing', files: def({ 'parameters.list': null }) },
  { name: 'parameters-missing-api15', files: def({ ganeti_api_version: '15\n', 'parameters.list': null }) },
  { name: 'parameters-dir', files: def({ 'parameters.list': { dir: true } }) },
  { name: 'parameters-dangling', files: def({ 'parameters.list': { symlink: 'gone' } }) },
  { name: 'parameters-empty', files: def({ 'parameters.list': '' }) },
  { name: 'parameters-blank-lines', files: def({ 'parameters.list': 'a first\n\nb second\n\n' }) },
  { name: 'parameters-comments', files: def({ 'parameters.list': '# comment line\nsize The size\n' }) },
  { name: 'parameters-name-only', files: def({ 'parameters.list': 'lonely\nsize  The size  \n' }) },
  { name: 'parameters-tabs', files: def({ 'parameters.list': 'size\t\tThe\tsize\t\n' }) },
  { name: 'parameters-leading-space', files: def({ 'parameters.list': '   size The size\n' }) },
  { name: 'parameters-crlf', files: def({ 'parameters.list': 'size The size\r\nroot Root\r\n' }) },
  { name: 'parameters-bom', files: def({ 'parameters.list': '\ufeffsize The size\n' }) },
  { name: 'parameters-unicode-space', files: def({ 'parameters.list': 'size\u3000The size\u2003x\n' }) },
  { name: 'parameters-unit-sep', files: def({ 'parameters.list': 'size\u001fThe size\n' }) },
  { name: 'parameters-bad-names', files: def({ 'parameters.list': 'no_thing Bad\nA=B bad\nUpper Case\n-dash dash\n' }) },
  { name: 'parameters-api10', files: def({ ganeti_api_version: '10\n', 'parameters.list': Buffer.from([0xfe]) }) },
  { name: 'variants-empty', files: def({ 'variants.list': '' }) },
  { name: 'variants-missing', files: def({ 'variants.list': null }) },
  { name: 'variants-comments', files: def({ 'variants.list': '# comment\n\n  spaced  \n#x\nplain\n' }) },
  { name: 'variants-inline-comment', files: def({ 'variants.list': 'default # the default\n' }) },
  { name: 'variants-dir', files: def({ 'variants.list': { dir: true } }) },
  { name: 'variants-dangling', files: def({ 'variants.list': { symlink: 'gone' } }) },
  { name: 'variants-symlink-loop', files: def({ 'variants.list': { symlink: 'variants.list' } }) },
  { name: 'variants-unreadable', files: def({ 'variants.list': { mode: 0o000, content: 'a\n' } }) },
  { name: 'variants-crlf-bom', files: def({ 'variants.list': '\ufeffdefault\r\nother\r\n' }) },
  { name: 'variants-unsafe', files: def({ 'variants.list': 'ok\nhas space\n../up\nplus+x\n' }) },
  { name: 'variants-executable', files: def({ 'variants.list': { mode: 0o755, content: 'a\n' } }) },
  { name: 'variants-with-conf-dir', files: def({ 'variants.list': 'default\nmissing\n', 'variants/default.conf': 'X=1\n' }) },
  { name: 'scripts-0700', files: def({ create: exe(SCRIPT, 0o700), export: exe(SCRIPT, 0o744) }) },
  { name: 'bad.name', files: def() },
  { name: 'has space', files: def() },
  { name: 'plus+variant', files: def() },
  { name: 'unicode-é', files: def() },
  { name: 'trailing-newline\n', files: def() },
  { name: 'empty-dir', files: {} },
  { name: 'only-api', files: { ganeti_api_version: '20\n' } },
];

export const CRASH_CORPUS: CorpusCase[] = [
  { name: 'api-non-utf8', files: def({ ganeti_api_version: Buffer.from([0x32, 0x30, 0x0a, 0xff, 0x0a]) }), crash: true },
  { name: 'api-latin1', files: def({ ganeti_api_version: Buffer.from('v\xe9rsion\n', 'latin1') }), crash: true },
  { name: 'api-truncated-utf8', files: def({ ganeti_api_version: Buffer.from([0x32, 0x30, 0xe2, 0x82]) }), crash: true },
  { name: 'api-surrogate-utf8', files: def({ ganeti_api_version: Buffer.from([0xed, 0xa0, 0x80, 0x0a]) }), crash: true },
  { name: 'api-overlong', files: def({ ganeti_api_version: Buffer.from([0xc0, 0xaf, 0x0a]) }), crash: true },
  { name: 'api-4byte-bad', files: def({ ganeti_api_version: Buffer.from([0x0a, 0xf0, 0x9f, 0x98, 0x41]) }), crash: true },
  { name: 'api-crlf-then-bad', files: def({ ganeti_api_version: Buffer.concat([Buffer.from('20\r\n'.repeat(3000)), Buffer.from([0xff])]) }), crash: true },
  { name: 'variants-non-utf8', files: def({ 'variants.list': Buffer.from([0x61, 0x0a, 0xfe, 0x0a]) }), crash: true },
  { name: 'parameters-non-utf8', files: def({ 'parameters.list': Buffer.from('size Gr\xf6\xdfe\n', 'latin1') }), crash: true },
];

/** Write one case under root; returns its directory. */
export function writeCase(root: string, c: CorpusCase): string {
  const dir = path.join(root, c.name);
  fs.mkdirSync(dir, { recursive: true });
  const later: (() => void)[] = [];
  for (const [name, spec] of Object.entries(c.files)) {
    const p = path.join(dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (typeof spec === 'string' || Buffer.isBuffer(spec)) {
      fs.writeFileSync(p, spec);
      fs.chmodSync(p, 0o644);
    } else if (spec.dir) fs.mkdirSync(p);
    else if (spec.symlink !== undefined) fs.symlinkSync(spec.symlink, p);
    else if (spec.fifo) mustRun(['mkfifo', p]);
    else {
      fs.writeFileSync(p, spec.content ?? '');
      // Modes last, so an unreadable file is still written.
      later.push(() => fs.chmodSync(p, spec.mode ?? 0o644));
    }
  }
  for (const f of later) f();
  return dir;
}

/** Entries writeCorpus adds beside the cases (hidden ones excluded): what DiagnoseOS lists. */
export const EXTRA_ENTRIES = ['README', 'link-to-good', 'link-dangling', 'link-loop', 'lost+found', 'link-to-file'];

export function writeCorpus(root: string, cases: CorpusCase[]): void {
  for (const c of cases) writeCase(root, c);
  // A stray plain file, symlinked entries, lost+found (not on a mount point here, so listed) and
  // hidden entries, as Ganeti meets them in a search directory.
  fs.writeFileSync(path.join(root, 'README'), 'not an OS\n');
  fs.symlinkSync(cases[0].name, path.join(root, 'link-to-good'));
  fs.symlinkSync('nowhere', path.join(root, 'link-dangling'));
  fs.symlinkSync('link-loop', path.join(root, 'link-loop'));
  fs.symlinkSync('README', path.join(root, 'link-to-file'));
  fs.mkdirSync(path.join(root, 'lost+found'));
  fs.mkdirSync(path.join(root, '.hidden'), { recursive: true });
  writeCase(root, { name: '.hidden-os', files: def() });
}
