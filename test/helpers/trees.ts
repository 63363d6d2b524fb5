/**
 * Files and trees in tests: temporary directories, every entry of a tree with its type, mode
 * and content hash (golden trees, "nothing changed" checks), and the fixture of a definition
 * ganeti-os did not write (ganeti-instance-debootstrap's).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * A new directory `ganeti-os-<tag>-XXXXXX` in `parent` (default $TMPDIR; another where it must
 * sit elsewhere: under a work directory, where a cluster's nodes see it); the test removes it.
 */
export function tempDir(tag = 'test', parent = os.tmpdir()): string {
  return fs.mkdtempSync(path.join(parent, `ganeti-os-${tag}-`));
}

export function read(p: string): string {
  return fs.readFileSync(p, 'utf8');
}

export interface TreeEntry {
  path: string;
  /** 'special': a FIFO, socket or device (never read: it could block). */
  type: 'file' | 'dir' | 'symlink' | 'special';
  mode: string;
  sha256?: string;
  target?: string;
}

/** Every entry below `root` with type, mode and content hash: for "nothing changed" checks and golden trees. */
export function snapshotTree(root: string): TreeEntry[] {
  const out: TreeEntry[] = [];
  if (!fs.existsSync(root)) return out;
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const abs = path.join(dir, name);
      const rel = path.relative(root, abs);
      const st = fs.lstatSync(abs);
      const mode = '0' + (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push({ path: rel, type: 'symlink', mode, target: fs.readlinkSync(abs) });
      else if (st.isDirectory()) {
        out.push({ path: rel, type: 'dir', mode });
        walk(abs);
      } else if (!st.isFile()) out.push({ path: rel, type: 'special', mode });
      else out.push({ path: rel, type: 'file', mode, sha256: crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex') });
    }
  };
  walk(root);
  return out;
}

/** The trees under `roots` as one string (snapshotTree of each): equal strings, same trees. */
export function treeHash(...roots: string[]): string {
  return roots.map((r) => [`# ${r}`, ...snapshotTree(r).map((e) => [e.path, e.type, e.type === 'symlink' ? e.target : e.mode, e.sha256 ?? ''].join(' ').trimEnd())].join('\n')).join('\n');
}

export const FOREIGN_FIXTURE = path.join(__dirname, '..', 'fixtures', 'foreign-debootstrap');

/**
 * A copy of the ganeti-instance-debootstrap fixture in `parent`: os/debootstrap with its
 * variants.list a symlink to etc/variants.list, as the Debian package installs it, `etc`
 * standing for /etc/ganeti/instance-debootstrap: its common.sh reads the variants from
 * etc/variants (its VARIANTS_DIR default), as the package's reads them from
 * /etc/ganeti/instance-debootstrap/variants. `pristine`: common.sh as the package has it (the
 * scripts read /etc/ganeti/instance-debootstrap/variants, wherever the list points).
 */
export function foreignCopy(parent: string, opts: { pristine?: boolean } = {}): { os: string; etc: string } {
  const osDir = path.join(parent, 'os', 'debootstrap');
  const etc = path.join(parent, 'etc');
  fs.cpSync(path.join(FOREIGN_FIXTURE, 'os'), path.join(parent, 'os'), { recursive: true });
  fs.cpSync(path.join(FOREIGN_FIXTURE, 'etc'), etc, { recursive: true });
  if (!opts.pristine) {
    const common = path.join(osDir, 'common.sh');
    fs.writeFileSync(common, fs.readFileSync(common, 'utf8').replace(/VARIANTS_DIR:="\/etc\/ganeti\/instance-debootstrap\/variants"/, `VARIANTS_DIR:="${etc}/variants"`));
  }
  for (const s of ['create', 'export', 'import', 'rename', 'verify']) fs.chmodSync(path.join(osDir, s), 0o755);
  for (const f of ['common.sh', 'ganeti_api_version', 'parameters.list']) fs.chmodSync(path.join(osDir, f), 0o644);
  fs.symlinkSync(path.join(etc, 'variants.list'), path.join(osDir, 'variants.list'));
  return { os: osDir, etc };
}
