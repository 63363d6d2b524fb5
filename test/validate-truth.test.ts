/**
 * Issue 22: validate tells the truth. Each definition below is judged twice, for each Ganeti
 * release (3.0 and 3.1): by `ganeti-os validate --ganeti <release>` and by that release's own
 * node code (test/ganeti/harness.py: ValidateOS, which every
 * node runs before an instance add or reinstall, and InstanceOsAdd, which runs create). A
 * definition validate calls broken (an `error:` with its code, exit 1) must fail through
 * Ganeti's code; one it calls working (exit 0, no error) must pass through it, scripts that are
 * not shell included.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cli, foreignCopy, tempDir } from './helpers/cli';
import { def, writeCase } from './helpers/corpus';
import { GanetiAnswer, ganetiBatch } from './helpers/ganeti';
import { describeReleases } from './helpers/system';
import type { GanetiRelease } from '../src/ganeti/releases';
import { firstRunFindings } from '../src/definition/first-run';

type Files = Parameters<typeof def>[0];
type Ask = (d: string, name: string) => Record<string, unknown>;

let root: string;
/** Where the current release's definitions are made (a directory of root's per release). */
let here: string;
let base: string;
let disk: string;

beforeAll(async () => {
  root = tempDir('validate-truth');
  here = root;
  const r = await cli(root, ['new', 'base', '--template', 'blank', '--yes']);
  if (r.code !== 0) throw new Error(r.stderr);
  base = path.join(root, 'base');
  disk = path.join(root, 'disk0');
  fs.writeFileSync(disk, '');
  fs.truncateSync(disk, 64 * 1024 * 1024);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** A copy of the blank-template definition under a new name, changed by `edit`. */
function blank(name: string, edit: (d: string) => void): string {
  const d = path.join(here, 'os', name);
  fs.cpSync(base, d, { recursive: true });
  edit(d);
  return d;
}

/** A definition written from `files` (test/helpers/corpus.ts's def: API 20, variants default and minimal). */
function written(name: string, files: Files): string {
  return writeCase(path.join(here, 'os'), { name, files: def(files) });
}

const append = (d: string, file: string, text: string) => fs.appendFileSync(path.join(d, file), text);
const scripts = (content: string): Files => Object.fromEntries(['create', 'import', 'export', 'rename', 'verify'].map((s) => [s, { mode: 0o755, content }]));

/** ValidateOS for os+variant with these OS parameters (what every node runs first). */
const validateOs =
  (variant = 'default', osparams: Record<string, string> = {}): Ask =>
  (d, name) => ({ action: 'validate', os_dir: d, os_name: `${name}+${variant}`, osparams });
/** InstanceOsAdd: create, as Ganeti runs it for a new instance. */
const add =
  (variant = 'default'): Ask =>
  (d, name) => ({ action: 'add', instance: { name: 'instance1.example.com', os: `${name}+${variant}`, os_dir: d, disks: [{ path: disk, size: 64 }] } });

/** Export or import of disk 0 as Ganeti's import-export daemon runs the script (bash -c), to or from `stream`. */
const transfer =
  (action: 'export' | 'import', stream: () => string): Ask =>
  (d, name) => ({
    action,
    index: 0,
    ...(action === 'export' ? { output: stream() } : { input: stream() }),
    instance: { name: 'instance1.example.com', os: `${name}+default`, os_dir: d, disks: [{ path: disk, size: 64 }] },
  });
const streamFile = () => path.join(root, 'stream');

/** validate as Ganeti `release` (--ganeti) sees the definition: its JSON result and its text. */
async function validate(d: string, release: GanetiRelease) {
  const r = await cli(root, ['validate', d, '--json', '--ganeti', release]);
  const doc = JSON.parse(r.stdout);
  expect(doc.ganeti).toBe(release);
  const res = doc.results[0];
  return { code: r.code, res, codes: (res.errors as { code: string }[]).map((e) => e.code), text: (await cli(root, ['validate', d, '--ganeti', release])).stdout };
}

interface Broken {
  what: string;
  make: () => string;
  code: string;
  /** Ganeti's calls that must fail. */
  fails: Ask[];
  /** Ganeti's calls that must still pass (the failure is that case only). */
  passes?: Ask[];
  /** What the error must say. */
  says?: RegExp;
  /** What Ganeti's first failing call must say (its error, output or log): the failure is this one. */
  ganetiSays?: RegExp;
}

/** ganeti-instance-debootstrap's common.sh check of OS_API_VERSION (/usr/share/ganeti/os/debootstrap/common.sh): it takes 5, 10, 15 and 20. */
const DEBOOTSTRAP_API_CHECK = 'if [ -z "$OS_API_VERSION" -o "$OS_API_VERSION" = "5" ]; then\n  OS_API_VERSION=5\nelif [ "$OS_API_VERSION" = "10" -o "$OS_API_VERSION" = "15" -o \\\n       "$OS_API_VERSION" = "20" ]; then\n  :\nelse\n  echo "Unknown OS API VERSION $OS_API_VERSION" >&2\n  exit 1\nfi\n';

const BROKEN: Broken[] = [
  {
    what: 'a script body with CRLF line ends (the #! line plain)',
    make: () => written('crlf-body', { create: { mode: 0o755, content: '#!/bin/sh\nset -e\r\necho installing\r\nexit 0\r\n' } }),
    code: 'crlf',
    fails: [add()],
  },
  {
    what: '`false` at the end of defaults.conf',
    make: () => blank('false-defaults', (d) => append(d, 'defaults.conf', 'false\n')),
    code: 'verify-refuses',
    fails: [validateOs(), add()],
  },
  {
    what: '`return 1` in a variants/<v>.conf',
    make: () =>
      blank('return-variant', (d) => {
        fs.writeFileSync(path.join(d, 'variants.list'), 'default\nsmall\n');
        fs.writeFileSync(path.join(d, 'variants', 'small.conf'), 'return 1\n');
      }),
    code: 'verify-refuses',
    fails: [validateOs('small'), add('small')],
    passes: [validateOs('default')],
  },
  {
    what: '${HOME} under set -u (Ganeti runs scripts with a reset environment)',
    make: () => blank('home-unset', (d) => append(d, 'defaults.conf', 'CACHE_DIR=${HOME}/.cache\n')),
    code: 'verify-refuses',
    fails: [validateOs(), add()],
  },
  {
    what: 'an unbound variable at the top level of a lib/*.sh',
    make: () => blank('lib-unbound', (d) => append(d, 'lib/steps.sh', '\nSTEP_ROOT=$STEPS_BASE/x\n')),
    code: 'verify-refuses',
    fails: [validateOs(), add()],
  },
  {
    what: '`: ${UNPRIV_USER:?missing}` at the top of a common.sh every script sources, verify included',
    make: () => written('unpriv-common', { 'common.sh': ': ${UNPRIV_USER:?missing}\n', ...scripts('#!/bin/bash\nset -e\n. ./common.sh\nexit 0\n') }),
    code: 'verify-refuses',
    fails: [validateOs(), add()],
  },
  {
    what: '#!bash (a relative interpreter)',
    make: () => written('relative-bash', { create: { mode: 0o755, content: '#!bash\nexit 0\n' } }),
    code: 'interpreter-relative',
    fails: [add()],
    passes: [validateOs()],
  },
  {
    what: 'a helper the script executes whose #! names an interpreter that does not exist',
    make: () =>
      written('helper-python2', {
        'gnt-cobbler.py': { mode: 0o755, content: '#!/usr/bin/python\nprint "hello"\n' },
        create: { mode: 0o755, content: '#!/bin/sh\nset -e\n./gnt-cobbler.py --install "$INSTANCE_NAME"\n' },
      }),
    code: 'helper-interpreter-missing',
    fails: [add()],
  },
  {
    what: 'a helper the script executes as ./gnt-helper.py that does not exist',
    make: () => written('helper-gone', { create: { mode: 0o755, content: '#!/bin/sh\nset -e\n./gnt-helper.py --install "$INSTANCE_NAME"\n' } }),
    code: 'helper-missing',
    fails: [add()],
    passes: [validateOs()],
    says: /create line 3 runs gnt-helper\.py, which does not exist/,
  },
  {
    what: 'a helper the script executes as "$(dirname "$0")/lib/helper.sh" that does not exist',
    make: () => written('helper-lib-gone', { create: { mode: 0o755, content: '#!/bin/bash\nset -e\n"$(dirname "$0")/lib/helper.sh" "$INSTANCE_NAME"\nexit 0\n' } }),
    code: 'helper-missing',
    fails: [add()],
    says: /runs lib\/helper\.sh, which does not exist/,
  },
  {
    what: 'a missing helper in a function the script always calls (issue 29: still an error)',
    make: () => written('helper-in-called-function', { create: { mode: 0o755, content: '#!/bin/bash\nset -e\ninstall_it() {\n  ./gnt-helper.py "$INSTANCE_NAME"\n}\ninstall_it\nexit 0\n' } }),
    code: 'helper-missing',
    fails: [add()],
    says: /create line 4 runs gnt-helper\.py, which does not exist/,
  },
  {
    what: 'a helper the script executes that is not executable (mode 0644)',
    make: () => written('helper-noexec', { 'helper.sh': { mode: 0o644, content: '#!/bin/sh\necho hi\n' }, create: { mode: 0o755, content: '#!/bin/sh\nset -e\n./helper.sh\n' } }),
    code: 'helper-not-executable',
    fails: [add()],
    says: /runs helper\.sh, which is not executable \(mode 0644\)/,
    ganetiSays: /exit code 126/,
  },
  {
    what: 'a common.sh the scripts source under set -e, saved as UTF-16',
    make: () => written('common-utf16', { 'common.sh': Buffer.from('\ufeffX=1\n', 'utf16le'), ...scripts('#!/bin/bash\nset -e\n. ./common.sh\nexit 0\n') }),
    code: 'sourced-encoding',
    fails: [add(), validateOs()],
    says: /sources common\.sh, which is encoded as UTF-16/,
  },
  {
    what: 'a common.sh the scripts source under set -e, saved with a UTF-8 byte-order mark',
    make: () => written('common-bom', { 'common.sh': '\ufeffX=1\n', ...scripts('#!/bin/bash\nset -e\n. ./common.sh\nexit 0\n') }),
    code: 'sourced-encoding',
    fails: [add(), validateOs()],
    says: /encoded as UTF-8 with a byte-order mark/,
  },
  {
    what: 'a helper the script executes whose #! line ends in CR',
    make: () => written('helper-cr-shebang', { 'helper.py': { mode: 0o755, content: '#!/usr/bin/python3\r\nprint(1)\r\n' }, create: { mode: 0o755, content: '#!/bin/sh\nset -e\n./helper.py\n' } }),
    code: 'helper-interpreter-missing',
    fails: [add()],
    says: /runs helper\.py, which has a CR \(\\r\) at the end of its '#!' line/,
  },
  {
    what: 'a common.sh a sh script sources, with CRLF line ends (dash refuses "set -e\\r" and exits)',
    make: () => written('common-crlf-sh', { 'common.sh': 'set -e\r\nX=1\r\n', create: { mode: 0o755, content: '#!/bin/sh\n. ./common.sh\nexit 0\n' } }),
    code: 'crlf',
    fails: [add()],
    says: /common\.sh, which create line 2 sources, has CR/,
  },
  {
    what: 'a create script saved as UTF-16 (byte-order mark FF FE)',
    make: () => written('utf16-create', { create: { mode: 0o755, content: Buffer.from('\ufeff#!/bin/sh\nexit 0\n', 'utf16le') } }),
    code: 'no-shebang',
    fails: [add()],
    says: /encoded as UTF-16 \(little-endian, byte-order mark FF FE\)/,
  },
  {
    what: 'a create script saved as UTF-16 big-endian (byte-order mark FE FF)',
    make: () => written('utf16be-create', { create: { mode: 0o755, content: Buffer.from('\ufeff#!/bin/sh\nexit 0\n', 'utf16le').swap16() } }),
    code: 'no-shebang',
    fails: [add()],
    says: /encoded as UTF-16 \(big-endian, byte-order mark FE FF\)/,
  },
  {
    what: 'an export script saved as UTF-16 (bash, which the import-export daemon falls back to, refuses it as binary)',
    make: () => written('utf16-export', { export: { mode: 0o755, content: Buffer.from('\ufeff#!/bin/sh\nhead -c 4096 /dev/zero\n', 'utf16le') } }),
    code: 'no-shebang',
    fails: [transfer('export', streamFile)],
    says: /export' is encoded as UTF-16.*binary file/,
  },
  {
    what: 'a ganeti-instance-debootstrap copy whose listed variant has no $VARIANTS_DIR/<v>.conf (its common.sh exits: "Published variant ... is missing its config file")',
    make: () => {
      const { os: d, etc } = foreignCopy(path.join(here, 'deb-missing'));
      fs.appendFileSync(path.join(etc, 'variants.list'), 'bookworm\n');
      return d;
    },
    code: 'variant-config-missing',
    fails: [add('bookworm')],
    passes: [validateOs('bookworm')],
    says: /variant 'bookworm' has no .*bookworm\.conf, and the scripts fail without it \(common\.sh line \d+ reaches "exit 1"/,
    ganetiSays: /Published variant bookworm is missing its config file/,
  },
  {
    what: 'a variant whose variants/<v>.conf is missing, sourced unguarded by a sh script',
    make: () => written('variant-conf-sh', { 'variants/default.conf': 'X=1\n', create: { mode: 0o755, content: '#!/bin/sh\n. "variants/$OS_VARIANT.conf"\nexit 0\n' } }),
    code: 'variant-config-missing',
    fails: [add('minimal')],
    passes: [add('default')],
    says: /variant 'minimal' has no variants\/minimal\.conf, and the scripts fail without it \(create line 2 sources it unguarded/,
  },
  {
    what: 'a variant configuration that sources a missing file under /etc',
    make: () => blank('etc-missing', (d) => append(d, 'variants/default.conf', '. /etc/ganeti-os-test-nonexistent/site-extra.conf\n')),
    code: 'verify-refuses',
    fails: [validateOs(), add()],
  },
  {
    what: 'a verify that rejects OS_API_VERSION=20 while the definition lists 20',
    make: () => written('verify-api', { verify: { mode: 0o755, content: '#!/bin/sh\ncase "$OS_API_VERSION" in\n  10|15) exit 0 ;;\nesac\necho "verify: API $OS_API_VERSION?" >&2\nexit 1\n' } }),
    code: 'verify-refuses',
    fails: [validateOs()],
  },
  {
    what: 'a parameter default outside its own choices',
    make: () =>
      blank('default-outside', (d) => {
        fs.writeFileSync(path.join(d, 'parameters.list'), 'size The size\n');
        fs.writeFileSync(path.join(d, 'lib', 'parameters.sh'), "GOS_PARAMS=(size)\ndeclare -gA GOS_PARAM_DEFAULT=([size]=huge)\ndeclare -gA GOS_PARAM_CHOICES=([size]=$'small\\nlarge')\ndeclare -gA GOS_PARAM_PATTERN=()\n");
      }),
    code: 'verify-refuses',
    fails: [validateOs()],
    passes: [validateOs('default', { size: 'small' })],
  },
  {
    what: 'a BOM at the start of parameters.list',
    make: () => written('bom-params', { 'parameters.list': '\ufeffroot-size Size of the root filesystem\nfilesystem The filesystem type\n' }),
    code: 'bom',
    fails: [validateOs('default', { 'root-size': '10G' })],
    passes: [validateOs('default', { filesystem: 'ext4' })],
  },
  {
    what: 'a BOM at the start of variants.list',
    make: () => written('bom-variants', { 'variants.list': '\ufeffdefault\nminimal\n' }),
    code: 'bom',
    fails: [validateOs('default')],
    passes: [validateOs('minimal')],
  },
  {
    what: 'new --template image --yes: the default variant has no image',
    make: () => {
      const d = path.join(here, 'os', 'image-default');
      fs.mkdirSync(path.dirname(d), { recursive: true });
      fs.cpSync(path.join(here, 'image-new'), d, { recursive: true });
      return d;
    },
    code: 'verify-refuses',
    fails: [validateOs()],
  },
  {
    what: 'an API 15 ganeti-os definition (no verify) whose defaults.conf fails: create fails loading it',
    make: () =>
      blank('api15-false', (d) => {
        fs.writeFileSync(path.join(d, 'ganeti_api_version'), '15\n10\n');
        fs.rmSync(path.join(d, 'verify'));
        fs.rmSync(path.join(d, 'parameters.list'));
        append(d, 'defaults.conf', 'false\n');
      }),
    code: 'config-fails',
    fails: [add()],
  },
  // Error codes validate had before issue 22, each through Ganeti's code too.
  { what: 'a script without #!', make: () => written('no-shebang', { create: { mode: 0o755, content: 'exit 0\n' } }), code: 'no-shebang', fails: [add()] },
  { what: "a CR at the end of the #! line", make: () => written('cr-shebang', { create: { mode: 0o755, content: '#!/bin/sh\r\nexit 0\r\n' } }), code: 'crlf-shebang', fails: [add()] },
  { what: 'a missing absolute interpreter', make: () => written('no-python2', { create: { mode: 0o755, content: '#!/usr/bin/python2.4\nprint 1\n' } }), code: 'interpreter-missing', fails: [add()] },
  { what: 'env naming a command not on Ganeti\'s PATH', make: () => written('env-missing', { create: { mode: 0o755, content: '#!/usr/bin/env ganeti-os-no-such-interpreter\n' } }), code: 'interpreter-missing', fails: [add()] },
  { what: 'a blank line in parameters.list', make: () => written('param-blank', { 'parameters.list': 'a A\n\nb B\n' }), code: 'parameters-blank-line', fails: [validateOs()] },
  { what: 'variants.list lists none while variants/*.conf exist', make: () => written('variants-none', { 'variants.list': '# none\n', 'variants/default.conf': 'X=1\n' }), code: 'variants-none', fails: [validateOs()] },
  { what: 'a syntax error in a sourced file', make: () => blank('syntax', (d) => append(d, 'lib/steps.sh', '\nif true; then\n')), code: 'shell-syntax', fails: [validateOs(), add()] },
  { what: 'a sourced file that is missing', make: () => blank('sourced-missing', (d) => fs.rmSync(path.join(d, 'lib', 'steps.sh'))), code: 'sourced-missing', fails: [validateOs(), add()] },
  {
    what: 'merge-conflict markers in a script',
    make: () => written('markers', { create: { mode: 0o755, content: '#!/bin/sh\n<<<<<<< mine\necho a\n=======\necho b\n>>>>>>> theirs\n' } }),
    code: 'conflict-markers',
    fails: [add()],
  },
  {
    what: 'scripts that refuse the API version Ganeti passes',
    make: () => written('api-rejected', scripts('#!/bin/bash\nif [ "$OS_API_VERSION" = "10" ]; then\n  exit 0\nelse\n  echo "Unknown OS API VERSION $OS_API_VERSION" >&2\n  exit 1\nfi\n')),
    code: 'api-rejected',
    fails: [validateOs(), add()],
  },
  {
    what: "a debootstrap-style definition whose create takes 10|15 only, while the common.sh it sources takes 20 too (issue 29)",
    make: () =>
      written('api-rejected-case', {
        'common.sh': DEBOOTSTRAP_API_CHECK,
        create: { mode: 0o755, content: '#!/bin/bash\nset -e\ncase "$OS_API_VERSION" in\n  10|15) ;;\n  *) echo "Unknown OS API VERSION $OS_API_VERSION" >&2; exit 1;;\nesac\n. ./common.sh\nexit 0\n' },
      }),
    code: 'api-rejected',
    fails: [add()],
    passes: [validateOs()],
    says: /accept OS_API_VERSION 10, 15 only \(create: .*Ganeti passes OS_API_VERSION=20/,
    ganetiSays: /Unknown OS API VERSION 20/,
  },
  {
    what: 'a blank-template copy whose create takes ${OS_API_VERSION:-} = 15 only (issue 29)',
    make: () =>
      blank('api-rejected-blank', (d) => {
        const f = path.join(d, 'create');
        fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace('set -euo pipefail\n', 'set -euo pipefail\n[ "${OS_API_VERSION:-}" = 15 ] || { echo "unsupported API $OS_API_VERSION" >&2; exit 1; }\n'));
      }),
    code: 'api-rejected',
    fails: [add()],
    passes: [validateOs()],
    says: /accept OS_API_VERSION 15 only/,
    ganetiSays: /unsupported API 20/,
  },
  {
    what: 'an API 15 debootstrap-style definition whose create takes 10|20 only, while its common.sh takes 15 (issue 29)',
    make: () =>
      written('api-rejected-15', {
        ganeti_api_version: '15\n10\n',
        verify: null,
        'parameters.list': null,
        'common.sh': DEBOOTSTRAP_API_CHECK,
        create: { mode: 0o755, content: '#!/bin/sh\n. ./common.sh\ncase "$OS_API_VERSION" in\n  10|20) ;;\n  *) echo "Unknown OS API VERSION $OS_API_VERSION" >&2; exit 1;;\nesac\nexit 0\n' },
      }),
    code: 'api-rejected',
    fails: [add()],
    says: /Ganeti passes OS_API_VERSION=15/,
    ganetiSays: /Unknown OS API VERSION 15/,
  },
];

interface Works {
  what: string;
  make: () => string;
  /** Ganeti's calls that must pass. */
  passes: Ask[];
  /** A warning validate must give (code and what it says). */
  warns?: [string, RegExp];
}

const PY = '#!/usr/bin/python3\nimport os, sys\nsys.exit(0 if os.environ.get("OS_API_VERSION") == "20" else 1)\n';
const WORKS: Works[] = [
  { what: 'the blank template as new writes it', make: () => blank('works-blank', () => undefined), passes: [validateOs(), add()] },
  { what: 'scripts in Python (#!/usr/bin/python3)', make: () => written('works-python', scripts(PY)), passes: [validateOs(), validateOs('minimal'), add()] },
  { what: 'scripts through env (#!/usr/bin/env python3)', make: () => written('works-env', scripts(PY.replace('/usr/bin/python3', '/usr/bin/env python3'))), passes: [validateOs(), add()] },
  {
    what: 'a relative interpreter that exists in the OS directory (Ganeti runs scripts there)',
    make: () => written('works-relative', { 'sh-here': { symlink: '/bin/sh' }, create: { mode: 0o755, content: '#!sh-here\nexit 0\n' } }),
    passes: [add()],
  },
  { what: 'CR line ends that do nothing harmful', make: () => written('works-crlf', { create: { mode: 0o755, content: '#!/bin/sh\necho a\r\necho b\r\n' } }), passes: [add()] },
  {
    what: 'a helper in Python the script executes',
    make: () => written('works-helper', { 'helper.py': { mode: 0o755, content: '#!/usr/bin/python3\nprint("ok")\n' }, create: { mode: 0o755, content: '#!/bin/sh\nset -e\n./helper.py\n' } }),
    passes: [add()],
  },
  {
    what: 'export and import without #! (the import-export daemon starts them from bash, which reads them as bash scripts)',
    make: () =>
      written('works-ie-noshebang', {
        export: { mode: 0o755, content: 'set -e\nhead -c 4096 /dev/zero\n' },
        import: { mode: 0o755, content: 'set -e\ncat > /dev/null\n' },
      }),
    passes: [transfer('export', streamFile), transfer('import', streamFile)],
  },
  {
    what: 'a helper run only when it exists ([ -x ./site-hook ] && ./site-hook)',
    make: () => written('works-optional-helper', { create: { mode: 0o755, content: '#!/bin/sh\nset -e\nif [ -x ./site-hook ]; then ./site-hook; fi\n[ -x "$(dirname "$0")/lib/extra.sh" ] && "$(dirname "$0")/lib/extra.sh"\nexit 0\n' } }),
    passes: [add()],
  },
  {
    what: 'a missing helper run only when command -v finds it (command -v ./opt-hook >/dev/null && ./opt-hook; issue 29)',
    make: () => written('works-helper-command-v', { create: { mode: 0o755, content: '#!/bin/bash\nset -e\ncommand -v ./opt-hook >/dev/null && ./opt-hook\nexit 0\n' } }),
    passes: [add()],
    warns: ['helper-missing', /create line 3 runs opt-hook, which does not exist in the definition, but it runs only when the command before its && or \|\| lets it/],
  },
  {
    what: 'a missing helper whose failure a || catches (./opt-hook || true)',
    make: () => written('works-helper-or-true', { create: { mode: 0o755, content: '#!/bin/bash\nset -e\n./opt-hook || true\nexit 0\n' } }),
    passes: [add()],
    warns: ['helper-missing', /create line 3 runs opt-hook, which does not exist in the definition, but it runs only as the left side of a \|\|, which catches its failure/],
  },
  {
    what: 'a missing helper inside an if on a variable Ganeti does not set (issue 29)',
    make: () => written('works-helper-if', scripts('#!/bin/bash\nset -eu\nif [ -n "${GANETI_DEBUG_HOOK:-}" ]; then ./debug-hook; fi\nexit 0\n')),
    passes: [add(), validateOs()],
    warns: ['helper-missing', /runs debug-hook, which does not exist in the definition, but it runs only when its condition holds \(it is inside an if at line 3\)/],
  },
  {
    what: 'a missing helper in a function nothing calls (issue 29)',
    make: () => written('works-helper-uncalled', scripts('#!/bin/bash\nset -e\nunused() { ./never-there; }\nmaybe() {\n  ./never-there-either\n}\n[ -n "${GANETI_DEBUG_HOOK:-}" ] && maybe\nexit 0\n')),
    passes: [add(), validateOs()],
    warns: ['helper-missing', /runs never-there, which does not exist in the definition, but it runs only when function unused \(line 3\) is called/],
  },
  {
    what: 'FOO=bar with a CR in defaults.conf (a warning: the shell keeps the CR in the value; issue 29)',
    make: () => blank('works-crlf-defaults', (d) => append(d, 'defaults.conf', 'FOO=bar\r\n')),
    passes: [validateOs(), add()],
    warns: ['crlf', /defaults\.conf has CR \(\\r\) line ends \(line \d+: "FOO=bar"\): the shell keeps the CR as part of each command, so FOO is "bar\\r"/],
  },
  {
    what: "a variants/<v>.conf with CRLF line ends (sed -i 's/$/\\r/'; a warning; issue 29)",
    make: () =>
      blank('works-crlf-variant', (d) => {
        const f = path.join(d, 'variants', 'default.conf');
        fs.writeFileSync(f, `${fs.readFileSync(f, 'utf8')}SUITE=trixie\n`.replace(/\n/g, '\r\n'));
      }),
    passes: [validateOs(), add()],
    warns: ['crlf', /variants\/default\.conf has CR \(\\r\) line ends \(line \d+: "SUITE=trixie"\).*SUITE is "trixie\\r"/],
  },
  {
    what: 'a variant without its variants/<v>.conf where the scripts go on without it ([ -f X ] && . X)',
    make: () =>
      written('works-variant-conf-optional', {
        'variants/default.conf': 'X=1\n',
        create: { mode: 0o755, content: '#!/bin/sh\nset -e\nif [ -f "variants/$OS_VARIANT.conf" ]; then\n  . "variants/$OS_VARIANT.conf"\nfi\n[ -f "variants/$OS_VARIANT.conf" ] && . "variants/$OS_VARIANT.conf"\nexit 0\n' },
      }),
    passes: [add('minimal'), add('default')],
  },
  {
    what: 'a ./path in a here-document the script writes (data for the instance, not a command it runs)',
    make: () =>
      written('works-heredoc', {
        create: { mode: 0o755, content: '#!/bin/sh\nset -e\ncat > /dev/null <<EOF\n./firstboot.sh --once\nEOF\nexit 0\n' },
      }),
    passes: [add()],
  },
  {
    what: 'a helper without an execute bit handed to its interpreter (sh ./helper.sh)',
    make: () => written('works-helper-sh', { 'helper.sh': { mode: 0o644, content: 'echo hi\n' }, create: { mode: 0o755, content: '#!/bin/sh\nset -e\nsh ./helper.sh\n' } }),
    passes: [add()],
  },
  {
    what: 'a common.sh with a UTF-8 byte-order mark sourced without set -e (the shell goes past the command it makes)',
    make: () => written('works-common-bom', { 'common.sh': '\ufeffX=1\n', ...scripts('#!/bin/bash\n. ./common.sh\nexit 0\n') }),
    passes: [add(), validateOs()],
  },
  {
    what: 'a bash script whose "set -e" line ends in CR (bash reports the option and goes on)',
    make: () => written('works-bash-set-cr', { create: { mode: 0o755, content: '#!/bin/bash\nset -e\r\necho installing\r\nexit 0\n' } }),
    passes: [add()],
  },
  {
    what: 'a common.sh with CRLF line ends that a bash script sources (set -e\\r reported, then gone past)',
    make: () => written('works-common-crlf-bash', { 'common.sh': 'set -e\r\nX=1\r\n', create: { mode: 0o755, content: '#!/bin/bash\n. ./common.sh\nexit 0\n' } }),
    passes: [add()],
  },
  {
    what: 'a helper given by "$(dirname "$0")/lib/helper.sh" that exists',
    make: () =>
      written('works-lib-helper', {
        'lib/helper.sh': { mode: 0o755, content: '#!/bin/sh\necho "helper for $1"\n' },
        create: { mode: 0o755, content: '#!/bin/bash\nset -e\n"$(dirname "$0")/lib/helper.sh" "$INSTANCE_NAME"\n' },
      }),
    passes: [add()],
  },
  {
    what: "an export saved as UTF-8 with a byte-order mark (bash, which the import-export daemon falls back to, goes past its first line)",
    make: () => written('works-bom-export', { export: { mode: 0o755, content: '\ufeff#!/bin/sh\nhead -c 4096 /dev/zero\n' } }),
    passes: [transfer('export', streamFile)],
  },
  { what: 'merge-conflict markers in README.md only', make: () => written('works-readme', { 'README.md': '<<<<<<< a\nx\n=======\ny\n>>>>>>> b\n' }), passes: [validateOs(), add()] },
  {
    what: 'a BOM in parameters.list of an API 15 definition (Ganeti ignores the file)',
    make: () => written('works-bom15', { ganeti_api_version: '15\n', verify: null, 'parameters.list': '\ufeffa A\n' }),
    passes: [validateOs(), add()],
  },
  {
    what: 'an API 15 ganeti-os definition whose configuration loads',
    make: () =>
      blank('works-api15', (d) => {
        fs.writeFileSync(path.join(d, 'ganeti_api_version'), '15\n10\n');
        fs.rmSync(path.join(d, 'verify'));
        fs.rmSync(path.join(d, 'parameters.list'));
        append(d, 'defaults.conf', 'NAME_SEEN=${INSTANCE_NAME}\n');
      }),
    passes: [add()],
  },
];

it('a first run that failed as another user than root says so (Ganeti runs scripts as root)', () => {
  const [asUser] = firstRunFindings([{ osName: 'x+y', how: 'verify', ok: false, output: '', error: 'OS validation script failed (exited with exit code 1), output: denied', uid: 1000 }]);
  expect([asUser.severity, asUser.code]).toEqual(['error', 'verify-refuses']);
  expect(asUser.message).toMatch(/denied \(validate ran it as uid 1000; Ganeti runs it as root/);
  const [asRoot] = firstRunFindings([{ osName: 'x+y', how: 'config', ok: false, output: 'boom', error: 'exit code 1' }]);
  expect(asRoot.code).toBe('config-fails');
  expect(asRoot.message).not.toMatch(/uid/);
  const [slow] = firstRunFindings([{ osName: 'x+y', how: 'verify', ok: false, output: '', timedOut: true }]);
  expect([slow.severity, slow.code]).toEqual(['warning', 'first-run-timeout']);
});

describeReleases("validate's errors are failures of Ganeti's own code, and its passes pass it (issue 22)", { root: true }, (release) => {
  let imageNew: { code: number; stderr: string };
  beforeAll(async () => {
    here = path.join(root, `ganeti-${release}`);
    fs.mkdirSync(here, { recursive: true });
    imageNew = await cli(here, ['new', 'image-new', '--template', 'image', '--yes']);
    if (imageNew.code !== 0) throw new Error(imageNew.stderr);
  });

  it("new says when Ganeti would refuse what it wrote (the image template's default variant has no IMAGE), and not otherwise", async () => {
    expect(imageNew.stderr).toMatch(/warning: as written, Ganeti refuses every instance of image-new\+default \(its verify fails: .*has no IMAGE/);
    const blankNew = await cli(here, ['new', 'blank-new', '--template', 'blank', '--yes']);
    expect(blankNew.code).toBe(0);
    expect(blankNew.stderr).not.toMatch(/warning/);
  });

  it.each(BROKEN.map((c) => [c.what, c] as const))('broken: %s', async (_what, c) => {
    const d = c.make();
    const name = path.basename(d);
    const v = await validate(d, release);
    expect(v.res.ganeti.ok).toBe(true);
    expect([v.code, v.codes]).toEqual([1, expect.arrayContaining([c.code])]);
    expect(v.text).toMatch(/\n {2}error: /);
    if (c.says) expect(v.res.errors.filter((e: { code: string }) => e.code === c.code).map((e: { message: string }) => e.message).join('\n')).toMatch(c.says);
    const asks = [...c.fails, ...(c.passes ?? [])].map((a) => a(d, name));
    const answers: GanetiAnswer[] = ganetiBatch(asks, release);
    const failed = answers.slice(0, c.fails.length).map((a, i) => [asks[i].action, a.ok]);
    expect(failed).toEqual(c.fails.map((_f, i) => [asks[i].action, false]));
    if (c.ganetiSays) expect(JSON.stringify(answers[0])).toMatch(c.ganetiSays);
    const passed = answers.slice(c.fails.length).map((a) => [a.ok, a.error ?? '']);
    expect(passed).toEqual((c.passes ?? []).map(() => [true, '']));
  });

  it.each(WORKS.map((c) => [c.what, c] as const))('works: %s', async (_what, c) => {
    const d = c.make();
    const v = await validate(d, release);
    expect([v.code, v.res.errors]).toEqual([0, []]);
    if (c.warns) {
      const [code, says] = c.warns;
      expect(v.res.warnings.filter((w: { code: string }) => w.code === code).map((w: { message: string }) => w.message).join('\n')).toMatch(says);
    }
    const answers = ganetiBatch(c.passes.map((a) => a(d, path.basename(d))), release);
    expect(answers.map((a) => [a.ok, a.error ?? ''])).toEqual(c.passes.map(() => [true, '']));
  });

  it('run ends as Ganeti ends: a blank line appended to parameters.list makes ValidateOS crash, and run verify fail', async () => {
    const d = blank('run-blank-param', (x) => append(x, 'parameters.list', '\n'));
    const [g] = ganetiBatch([validateOs()(d, path.basename(d))], release);
    expect([g.ok, g.type]).toEqual([false, 'IndexError']);
    const r = await cli(root, ['run', 'verify', '--os-dir', d, '--ganeti', release]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ValidateOS raises IndexError \(list index out of range\).*verify never runs/);
    const c = await cli(root, ['run', 'create', '--os-dir', d, '--disk', disk, '--ganeti', release]);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/ValidateOS raises IndexError/);
    // Without the blank line both run, as Ganeti's code runs them.
    const ok = blank('run-params-ok', () => undefined);
    expect(ganetiBatch([validateOs()(ok, 'run-params-ok')], release)[0].ok).toBe(true);
    expect((await cli(root, ['run', 'verify', '--os-dir', ok, '--ganeti', release])).code).toBe(0);
  });

  it("run ends as Ganeti ends for a missing helper and an export saved as UTF-16, and for an export with a UTF-8 byte-order mark that both run", async () => {
    const gone = written('run-helper-gone', { create: { mode: 0o755, content: '#!/bin/sh\nset -e\n./gnt-helper.py\n' } });
    const u16 = written('run-utf16-export', { export: { mode: 0o755, content: Buffer.from('\ufeff#!/bin/sh\nhead -c 4096 /dev/zero\n', 'utf16le') } });
    const bom = written('run-bom-export', { export: { mode: 0o755, content: '\ufeff#!/bin/sh\nhead -c 4096 /dev/zero\n' } });
    const out = path.join(root, `run-stream-${release}`);
    const g = ganetiBatch([add()(gone, 'run-helper-gone'), transfer('export', () => out)(u16, 'run-utf16-export'), transfer('export', () => out)(bom, 'run-bom-export')], release);
    expect(g.map((a) => a.ok)).toEqual([false, false, true]);
    const runs = [
      await cli(root, ['run', 'create', '--os-dir', gone, '--disk', disk, '--ganeti', release]),
      await cli(root, ['run', 'export', '--os-dir', u16, '--disk', disk, '--output', out, '--ganeti', release]),
      await cli(root, ['run', 'export', '--os-dir', bom, '--disk', disk, '--output', out, '--ganeti', release]),
    ];
    expect(runs.map((r) => r.code)).toEqual([1, 1, 0]);
    expect(runs[0].stderr).toMatch(/gnt-helper\.py: not found/);
    expect(runs[1].stderr).toMatch(/cannot execute binary file/);
    expect(fs.statSync(out).size).toBe(4096);
  });

  it('where the releases differ, validate --ganeti follows the release: kvm\'s vhost_net default (False in 3.0, True in 3.1) reaches the configuration create sources', async () => {
    // An API 15 definition (no verify: validate runs the configuration layers as create gets
    // them) whose defaults.conf needs vhost_net on: Ganeti 3.1's default, not 3.0's.
    const d = blank('needs-vhost-net', (x) => {
      fs.writeFileSync(path.join(x, 'ganeti_api_version'), '15\n10\n');
      fs.rmSync(path.join(x, 'verify'));
      fs.rmSync(path.join(x, 'parameters.list'));
      append(x, 'defaults.conf', '[ "${INSTANCE_HV_vhost_net-}" = True ]\n');
    });
    const works = release === '3.1';
    const v = await validate(d, release);
    expect([v.code, v.codes]).toEqual(works ? [0, []] : [1, ['config-fails']]);
    const [g] = ganetiBatch([add()(d, path.basename(d))], release);
    expect([g.ok, g.error ?? '']).toEqual(works ? [true, ''] : [false, expect.stringMatching(/.+/)]);
  });

  it('validate never changes the definition, and leaves no scratch copy behind', async () => {
    const d = blank('untouched', (x) => append(x, 'lib/steps.sh', '\ntouch "$GOS_DIR/written-by-verify"\n'));
    const before = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('ganeti-os-first-run-'));
    const v = await validate(d, release);
    expect(v.code).toBe(0);
    expect(fs.existsSync(path.join(d, 'written-by-verify'))).toBe(false);
    expect(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('ganeti-os-first-run-'))).toEqual(before);
  });
});
