/**
 * Builds the .deb of an OS definition with `dpkg-deb --build --root-owner-group` (no fakeroot,
 * no debhelper): the definition in /usr/share/ganeti/os/<name>/, its configuration a second time
 * as conffiles in /etc/ganeti/<name>/ where its runtime reads them over the shipped copies
 * (definition/layers.ts), its
 * Markdown files and the Debian changelog/copyright in /usr/share/doc/<package>/. Reproducible:
 * every mtime is the release's date, the tar is sorted by dpkg-deb, xz runs single-threaded.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import fse from 'fs-extra';
import { UsageError, UserError, errorMessage } from '../errors';
import { readDefinition } from '../definition/model';
import { JOURNAL_FILE, fsyncDir, removeQuietly } from '../definition/writer';
import { loadTemplate } from '../definition/templates';
import { PROVENANCE_FILE, sha256 } from '../definition/provenance';
import { conflictMarkerLines, findProblems } from '../definition/checks';
import { conffilePath, isDefinitionLayer } from '../definition/layers';
import { LOCK_FILE, ownerTag, removeDeadLeftovers } from '../definition/lock';
import { BESIDE_SUFFIX, STATE_DIR } from '../definition/upgrade';
import { toolVersion } from '../paths';
import {
  PACKAGED_OS_ROOT,
  checkMaintainer,
  checkVersion,
  nextVersion,
  packageName,
  renderChangelog,
  renderControl,
  renderCopyright,
  versionLessThan,
} from './debian';
import { RELEASE_FILE, Release, ReleaseRecord, describeChanges, readReleases, removeDeadRecords, stageReleases, commitReleases } from './release';
import { runSync } from '../system/process';

export interface PackInput {
  /** The definition directory (absolute). */
  osDir: string;
  /** Where the .deb goes (absolute; created if missing). */
  outputDir: string;
  /** Requested version; default: the last packed one when nothing changed, "1" the first time. */
  version?: string;
  /**
   * "Name <address>", checked as Debian wants it (a real, non-local address); default: the last
   * release's, else DEBFULLNAME/DEBEMAIL (or NAME/EMAIL), else the user and host, as dh_make does.
   */
  maintainer?: string;
  env: Record<string, string | undefined>;
  /** The mail domain for the default maintainer address (/etc/mailname, else the host name). */
  mailDomain: string;
  /** The account running pack: login and full name (the passwd entry's GECOS), for the last fallback. */
  user: { login: string; fullName?: string };
  /** The caller holds the definition's lock (its lock file is then no leftover to warn about). */
  locked?: boolean;
  /** Seconds since the epoch for a new release (SOURCE_DATE_EPOCH when set, else now). */
  now: number;
}

export interface PackResult {
  deb: string;
  package: string;
  version: string;
  /** False when an already-packed version was rebuilt (byte-identical). */
  newRelease: boolean;
  bytes: number;
  sha256: string;
  installedSizeKiB: number;
  osPath: string;
  conffiles: string[];
  depends: string[];
  suggests: string[];
  warnings: string[];
  /** Worth knowing, not a problem (e.g. where the Maintainer field came from). */
  notes: string[];
}

/** One entry of the definition that goes into the package. */
interface Entry {
  rel: string;
  kind: 'file' | 'dir' | 'link';
  mode: number;
  target?: string;
  content?: Buffer;
}

/**
 * Packs the definition in `input.osDir`. Throws a UserError (nothing written) when Ganeti would
 * reject it (backend._TryOSFromDisk, as `validate` says), when a file carries merge-conflict
 * markers, when a ganeti-os write was interrupted, when it holds special files or links out of
 * it, or when it changed since its last packed version and no higher version is given.
 * Writes `<package>_<version>_all.deb` into outputDir and, for a new version, the release record.
 */
export function buildPackage(input: PackInput): PackResult {
  const def = readDefinition(input.osDir);
  // A record that cannot be read is an error, never "not written by ganeti-os".
  const rec = def.text.record;
  if (rec.kind === 'other' && rec.errno && !(rec.isSymlink && rec.errno === 'ENOENT')) {
    throw new UserError(`cannot read ${rec.abs}: ${rec.errno}; nothing was written`);
  }
  if (rec.kind === 'other' && !rec.errno) throw new UserError(`${rec.abs} is ${rec.problem}; nothing was written`);
  if (!def.verdict.valid) {
    throw new UserError(`${def.dir} is not a valid OS definition: ${def.verdict.error}`, ["Ganeti would refuse it on every node; 'ganeti-os validate' says more"]);
  }
  if (fs.existsSync(path.join(def.dir, JOURNAL_FILE))) {
    throw new UserError(`${def.dir}: an earlier ganeti-os write was interrupted`, ['run any ganeti-os maintenance command on it (it rolls the write back) before packing']);
  }
  const name = def.name;
  const pkg = packageName(name);
  const working: string[] = [];
  const entries = collect(def.dir, working);
  const markers = conflictMarkers(entries);
  if (markers.length) {
    throw new UserError(`${def.dir} holds unresolved merge conflicts`, markers.map((m) => `  ${m}`));
  }

  const warnings: string[] = [];
  if (input.locked) working.splice(0, working.length, ...working.filter((w) => w !== LOCK_FILE));
  if (working.length) warnings.push(`left out ganeti-os's own working files: ${working.join(', ')}`);
  // Ganeti installs the package; what validate finds that instance operations hit, pack says.
  for (const p of findProblems(def)) {
    if (p.severity === 'error') warnings.push(`validate finds an error instance operations will hit (${p.code}): ${p.file ? `${p.file}: ` : ''}${p.message}`);
  }
  // Conffiles where the definition's runtime reads them (layers.ts, by the runtime version its
  // record names): a definition's layer file there; one without such a place only in the OS directory.
  const runtimeVersion = def.provenance?.runtimeVersion;
  const conffileOf = (e: Entry) => (def.provenance && e.kind === 'file' ? conffilePath(e.rel, name, runtimeVersion) : undefined);
  const confEntries = entries.filter((e) => conffileOf(e) !== undefined);
  const unplaced = entries.filter((e) => e.kind === 'file' && isDefinitionLayer(e.rel) && conffileOf(e) === undefined).map((e) => e.rel);
  if (unplaced.length) {
    const why = !def.provenance
      ? 'not written by ganeti-os, so where else its scripts read their configuration is not known'
      : runtimeVersion === undefined
        ? `its record (${PROVENANCE_FILE}) does not say which configuration its runtime reads (written before ganeti-os recorded it; 'ganeti-os upgrade' records it)`
        : `its runtime (version ${runtimeVersion}) reads no copy of ${unplaced.length === 1 ? 'it' : 'them'} in /etc/ganeti/${name}/`;
    warnings.push(`${unplaced.join(', ')}: packaged in ${PACKAGED_OS_ROOT}/${name} only, not as conffiles: ${why}`);
  }
  const isDoc = (e: Entry) => e.kind === 'file' && !e.rel.includes('/') && /\.md$/i.test(e.rel);

  // A site template's relations were recorded with it (the source may be far away, or gone).
  const relations = def.provenance?.templateSource?.package ?? templateRelations(def.provenance?.template);
  if (!def.provenance) warnings.push('not written by ganeti-os: Depends lists no tools (its scripts may call any)');

  const record = readReleases(def.dir);
  if (record && record.package !== pkg) {
    throw new UserError(`${path.join(def.dir, RELEASE_FILE)} belongs to package ${record.package}, not ${pkg}`, ['was the directory renamed? the OS name decides the package name']);
  }
  const latest = record?.releases[0];
  const notes: string[] = [];
  let maintainer: string;
  if (input.maintainer !== undefined) {
    checkMaintainer(input.maintainer);
    maintainer = input.maintainer;
  } else if (latest) maintainer = latest.maintainer;
  else {
    const m = defaultMaintainer(input.env, input.mailDomain, input.user);
    maintainer = m.maintainer;
    if (m.note) notes.push(m.note);
  }

  const files: Record<string, string> = {};
  for (const e of entries) if (e.kind !== 'dir') files[e.rel] = e.kind === 'link' ? `link ${e.target}` : `${modeOf(e).toString(8)} ${sha256(e.content!)}`;
  const digest = sha256(JSON.stringify({ pkg, files, conffiles: confEntries.map((e) => e.rel), docs: entries.filter(isDoc).map((e) => e.rel), relations, maintainer, name }));

  // The version: from the definition's record; it must increase whenever the digest changes.
  let release: Release;
  let newRelease = false;
  if (input.version !== undefined) checkVersion(input.version);
  const same = latest && latest.digest === digest;
  if (latest && (input.version === undefined || input.version === latest.version)) {
    if (!same) {
      throw new UserError(`${def.dir} changed since version ${latest.version} was packed`, [
        `changed content needs a higher version: ganeti-os pack --version ${nextVersion(latest.version)}`,
        ...describeChanges(latest.files ?? {}, files, { maintainer: [latest.maintainer, maintainer], packaging: true }).map((c) => `  ${c}`),
      ]);
    }
    release = latest;
  } else {
    const version = input.version ?? '1';
    const older = record?.releases.find((r) => r.version === version || !versionLessThan(r.version, version));
    if (older) {
      throw new UserError(`version ${version} is not higher than version ${older.version}, packed before`, [`next: --version ${nextVersion(latest!.version)}`]);
    }
    const changes = latest
      ? describeChanges(latest.files ?? {}, files, { maintainer: [latest.maintainer, maintainer], packaging: latest.digest !== digest })
      : [`Initial package of the Ganeti OS definition ${name} (ganeti-os ${toolVersion()}${def.provenance ? `, template ${def.provenance.template}` : ''}).`];
    release = { version, date: input.now, digest, maintainer, files, changes };
    newRelease = true;
  }

  const history = newRelease ? [release, ...(record?.releases ?? [])] : record!.releases.slice(record!.releases.indexOf(release));
  // Holding the definition's lock, the records a killed pack was writing are its leftovers.
  if (input.locked) removeDeadRecords(def.dir);
  const stage = makeStage(input.outputDir);
  let recordTmp: string | undefined;
  try {
    const root = path.join(stage, 'root');
    const osPath = `${PACKAGED_OS_ROOT}/${name}`;
    const docDir = `/usr/share/doc/${pkg}`;
    const put = (abs: string, content: Buffer | string, mode = 0o644) => {
      fse.outputFileSync(path.join(root, abs), content, { mode });
      fs.chmodSync(path.join(root, abs), mode);
    };
    fse.ensureDirSync(path.join(root, osPath));
    for (const e of entries) {
      const dest = isDoc(e) ? path.join(root, docDir, e.rel) : path.join(root, osPath, e.rel);
      if (e.kind === 'dir') fse.ensureDirSync(dest);
      else if (e.kind === 'link') {
        fse.ensureDirSync(path.dirname(dest));
        fs.symlinkSync(e.target!, dest);
      } else put(path.relative(root, dest), e.content!, modeOf(e));
    }
    for (const e of confEntries) put(conffileOf(e)!, e.content!, 0o644);
    const year = new Date(release.date * 1000).getUTCFullYear();
    put(`${docDir}/copyright`, renderCopyright(pkg, name, release.maintainer, year));
    put(`${docDir}/changelog.gz`, zlib.gzipSync(renderChangelog(pkg, history), { level: 9 }));

    const conffiles = confEntries.map((e) => conffileOf(e)!).sort();
    const data = walkStaged(root);
    const installedSizeKiB = data.reduce((n, f) => n + (f.size === undefined ? 1 : Math.ceil(f.size / 1024)), 0);
    const md5sums = data
      .filter((f) => f.size !== undefined && !conffiles.includes('/' + f.rel))
      .map((f) => `${crypto.createHash('md5').update(fs.readFileSync(path.join(root, f.rel))).digest('hex')}  ${f.rel}\n`)
      .join('');
    const control = renderControl({
      package: pkg,
      version: release.version,
      maintainer: release.maintainer,
      installedSize: installedSizeKiB,
      depends: relations.depends,
      suggests: relations.suggests,
      synopsis: `Ganeti OS definition ${name}`.slice(0, 80),
      description: description(def.provenance?.templateSource ? def.provenance.templateSource.summary : def.provenance?.template ? safeSummary(def.provenance.template) : undefined, name, def.variants, def.parameters.map((p) => p.name), osPath, commonDir(conffiles)),
    });
    put('DEBIAN/control', control);
    put('DEBIAN/md5sums', md5sums);
    if (conffiles.length) put('DEBIAN/conffiles', conffiles.map((c) => c + '\n').join(''));
    fs.chmodSync(path.join(root, 'DEBIAN'), 0o755);

    // Reproducible: directories 0755, every mtime the release's date.
    for (const f of walkStaged(root, true)) {
      const abs = path.join(root, f.rel);
      if (f.kind === 'dir') fs.chmodSync(abs, 0o755);
      if (f.kind === 'link') fs.lutimesSync(abs, release.date, release.date);
      else fs.utimesSync(abs, release.date, release.date);
    }
    fs.chmodSync(root, 0o755);
    fs.utimesSync(root, release.date, release.date);

    const debName = `${pkg}_${release.version.replace(/^\d+:/, '')}_all.deb`;
    const tmpDeb = path.join(stage, debName);
    const r = runSync(['dpkg-deb', '-Zxz', '-z6', '--threads-max=1', '--root-owner-group', '--build', root, tmpDeb], {
      stdin: 'pipe',
      env: { PATH: input.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', SOURCE_DATE_EPOCH: String(release.date) },
    });
    if (r.error) throw new UserError(`cannot run dpkg-deb (${r.error.message})`, ['Debian: it is in the dpkg package, always installed']);
    if (r.status !== 0) throw new UserError(`dpkg-deb --build failed: ${(r.stderr || r.stdout).trim()}`);
    const deb = path.join(input.outputDir, debName);
    const bytes = fs.readFileSync(tmpDeb);
    // The record and the package appear together: both are written in full and synced first (a
    // full disk fails them before either appears), then the record is renamed into place and its
    // directory synced, then the package; a failure in between takes both back. The record goes
    // first because the package can be made again from it byte for byte (its version, date and
    // files): a kill between the two renames leaves a record whose newest package is missing,
    // and the next pack builds exactly that package. The other order could leave a package of a
    // version the record does not know, which a later pack could make again with other content.
    syncFile(tmpDeb);
    if (newRelease) recordTmp = stageReleases(def.dir, { schema: 1, package: pkg, releases: history });
    placeTogether(deb, tmpDeb, stage, recordTmp ? { dir: def.dir, tmp: recordTmp } : undefined);
    recordTmp = undefined;
    return {
      deb,
      package: pkg,
      version: release.version,
      newRelease,
      bytes: bytes.length,
      sha256: sha256(bytes),
      installedSizeKiB,
      osPath,
      conffiles,
      depends: relations.depends,
      suggests: relations.suggests,
      warnings,
      notes,
    };
  } catch (err) {
    throw packError(err, input.outputDir);
  } finally {
    if (recordTmp) removeQuietly(recordTmp);
    // A stage that stays (a transient error) is removed by the next pack into this directory.
    removeQuietly(stage);
  }
}

/** A filesystem failure while building, as a UserError naming it (exit 1): nothing was written. */
function packError(err: unknown, outputDir: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (err instanceof Error && !(err instanceof UserError) && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) {
    return new UserError(`cannot write the package into ${outputDir}: ${e.message}; nothing was written`);
  }
  return err;
}

/** Sync the content of file `file` to the disk (the package dpkg-deb wrote). Throws the filesystem's error. */
function syncFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Rename, when given, the staged record `record.tmp` into place in `record.dir`, then the built
 * package `tmpDeb` to `deb`, syncing each directory after its rename. On any failure both are
 * taken back (a package it replaced, linked into `stage` first, returns; the previous record,
 * kept aside as `<record>.old-<owner tag>`, too) and the error is thrown.
 */
function placeTogether(deb: string, tmpDeb: string, stage: string, record: { dir: string; tmp: string } | undefined): void {
  const outDir = path.dirname(deb);
  const recordFile = record && path.join(record.dir, RELEASE_FILE);
  const recordOld = recordFile && `${recordFile}.old-${ownerTag()}`;
  let previous: string | undefined;
  let debPlaced = false;
  let recordPlaced = false;
  let keptOld = false;
  try {
    if (record && recordFile && recordOld) {
      if (fs.existsSync(recordFile)) {
        fs.rmSync(recordOld, { force: true });
        fs.linkSync(recordFile, recordOld);
        keptOld = true;
      }
      commitReleases(record.dir, record.tmp);
      recordPlaced = true;
      fsyncDir(record.dir);
    }
    if (fs.existsSync(deb)) {
      previous = path.join(stage, 'previous.deb');
      fs.linkSync(deb, previous);
    }
    fs.renameSync(tmpDeb, deb);
    debPlaced = true;
    fsyncDir(outDir);
  } catch (err) {
    try {
      if (recordPlaced && recordFile) {
        if (keptOld) fs.renameSync(recordOld!, recordFile);
        else fs.rmSync(recordFile, { force: true });
        keptOld = false;
      }
      if (debPlaced) {
        if (previous) fs.renameSync(previous, deb);
        else fs.rmSync(deb, { force: true });
      }
    } catch (again) {
      throw new UserError(`cannot write the package ${deb}: ${errorMessage(err)}; taking it back failed too (${errorMessage(again)})`, [
        `Check ${outDir} and ${recordFile ?? 'the release record'}: the record may not name the package, or name one that is gone; the next pack rebuilds it.`,
      ]);
    }
    throw err;
  } finally {
    // What stays (a transient error) is removed by the next pack: its owner is gone by then.
    if (record) removeQuietly(record.tmp);
    if (keptOld && recordOld) removeQuietly(recordOld);
  }
}

/** The owner tag in the name of a pack's staging directory (`.ganeti-os-pack-<tag>-XXXXXX`); undefined for any other name. */
function packStageOwner(name: string): string | undefined {
  return /^\.ganeti-os-pack-(\d+_\d*_.+)-[A-Za-z0-9]{6}$/.exec(name)?.[1];
}

/**
 * The output directory (made when missing) and a private stage in it; a UserError when either
 * cannot be. The stages a killed pack left there (their owner gone: lock.ts) are removed first.
 */
function makeStage(outputDir: string): string {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(outputDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`cannot use ${outputDir} as --output: ${(err as Error).message}`);
  }
  if (st && !st.isDirectory()) {
    throw new UserError(`--output ${outputDir} is not a directory`, ['--output names the directory the .deb goes into; its name is ganeti-os-<name>_<version>_all.deb']);
  }
  try {
    if (!st) fs.mkdirSync(outputDir, { recursive: true });
    else removeDeadLeftovers(outputDir, packStageOwner);
    return fs.mkdtempSync(path.join(outputDir, `.ganeti-os-pack-${ownerTag()}-`));
  } catch (err) {
    throw new UserError(`cannot write in ${outputDir}: ${(err as Error).message}; nothing was written`, ['Name a directory you can write in with --output DIR.']);
  }
}

/** Files and modes of the package keep only the owner-execute bit's meaning (0755 / 0644). */
function modeOf(e: Entry): number {
  if (e.kind === 'dir') return 0o755;
  return e.mode & 0o100 ? 0o755 : 0o644;
}

/**
 * The Maintainer field when none was given and nothing was packed before, as Debian's tools find
 * it: DEBFULLNAME (or NAME) and DEBEMAIL (or EMAIL, either may be "Name <address>"); without an
 * address, dh_make's fallback: the user's full name (else login) and login@<mail domain>, with a
 * note saying so (lintian flags a local address; the package works). Throws UsageError for a
 * DEBEMAIL/EMAIL that is not an address.
 */
function defaultMaintainer(env: Record<string, string | undefined>, mailDomain: string, user: { login: string; fullName?: string }): { maintainer: string; note?: string } {
  const name = env.DEBFULLNAME || env.NAME || user.fullName || user.login;
  const mail = env.DEBEMAIL || env.EMAIL;
  if (mail) {
    const maintainer = /</.test(mail) ? mail : `${name} <${mail}>`;
    if (!/^[^<>,\n]+ <[^<>@\s]+@[^<>@\s]+>$/.test(maintainer)) {
      throw new UsageError(`${env.DEBEMAIL ? 'DEBEMAIL' : 'EMAIL'} '${mail}' is not a mail address ("address@domain" or "Full Name <address@domain>")`);
    }
    return { maintainer };
  }
  const maintainer = `${name} <${user.login}@${mailDomain}>`;
  return {
    maintainer,
    note: `Maintainer: ${maintainer}, your user and host names, as dh_make takes them (lintian wants a real address); later versions keep it unless you pass --maintainer "Full Name <address>" (DEBFULLNAME and DEBEMAIL give one to a first pack)`,
  };
}

/** Depends/Suggests of a template along its base chain (template.json "package"), deduplicated. */
function templateRelations(template: string | undefined): { depends: string[]; suggests: string[] } {
  const depends: string[] = [];
  const suggests: string[] = [];
  if (!template) return { depends, suggests };
  const visit = (name: string) => {
    const t = loadTemplate(name);
    for (const b of t.manifest.base ?? []) visit(b);
    for (const d of t.manifest.package?.depends ?? []) if (!depends.includes(d)) depends.push(d);
    for (const s of t.manifest.package?.suggests ?? []) if (!suggests.includes(s)) suggests.push(s);
  };
  try {
    visit(template);
  } catch {
    throw new UserError(`the definition was written from template '${template}', which this ganeti-os does not have: cannot tell what its scripts depend on`);
  }
  return { depends, suggests };
}

/** The deepest directory holding every one of `files` (absolute); undefined for none. */
function commonDir(files: string[]): string | undefined {
  if (!files.length) return undefined;
  let dir = path.posix.dirname(files[0]);
  while (dir !== '/' && !files.every((f) => f.startsWith(dir + '/'))) dir = path.posix.dirname(dir);
  return dir;
}

function description(summary: string | undefined, name: string, variants: string[], params: string[], osPath: string, confDir: string | undefined): string[] {
  const paras = [
    `This package installs the Ganeti OS definition ${name} in ${osPath}, where Ganeti finds it on every node that has the package (create instances with "gnt-instance add -o ${name}${variants.length ? '+VARIANT' : ''}").`,
  ];
  if (summary) paras.push(`${summary}.`);
  const bits: string[] = [];
  if (variants.length) bits.push(`Variants: ${variants.join(', ')}.`);
  if (params.length) bits.push(`OS parameters: ${params.join(', ')}.`);
  if (confDir) bits.push(`The node's configuration is in ${confDir}/ (conffiles, read over the shipped defaults).`);
  if (bits.length) paras.push(bits.join(' '));
  return paras;
}

function safeSummary(template: string): string | undefined {
  try {
    return loadTemplate(template).manifest.summary;
  } catch {
    return undefined;
  }
}

/**
 * The definition's entries, sorted: regular files, directories and relative links that stay
 * inside it. Hidden entries are left out (version control, editors) except `.ganeti-os.json`;
 * the release record never goes in. Special files and links leading out are refused.
 */
function collect(dir: string, working: string[] = []): Entry[] {
  const out: Entry[] = [];
  const walk = (rel: string) => {
    const names = fs.readdirSync(path.join(dir, rel)).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      if (n.startsWith('.') && r !== PROVENANCE_FILE) {
        if (isWorkingFile(r)) working.push(r);
        continue;
      }
      if (n.endsWith(BESIDE_SUFFIX) || n.includes('.ganeti-os-new') || n.includes('.ganeti-os-old')) {
        throw new UserError(`${path.join(dir, r)}: a ganeti-os change is not finished`, [
          'a .ganeti-os-new file is the new version `ganeti-os upgrade` left beside a file you edited: merge it into that file, then remove it',
          'otherwise it is left over from an interrupted write: run any ganeti-os maintenance command on the definition first',
        ]);
      }
      const abs = path.join(dir, r);
      const st = fs.lstatSync(abs);
      if (st.isDirectory()) {
        out.push({ rel: r, kind: 'dir', mode: 0o755 });
        walk(r);
      } else if (st.isFile()) {
        if (st.size > MAX_FILE_BYTES) {
          throw new UserError(`${abs} is ${(st.size / 2 ** 30).toFixed(1)} GiB: too large for an OS definition's package (at most ${MAX_FILE_BYTES / 2 ** 20} MiB a file); nothing was written`, [
            'An image or a cache does not belong in the definition: move it out (the scripts can fetch or build it on the node).',
          ]);
        }
        let content: Buffer;
        try {
          content = fs.readFileSync(abs);
        } catch (err) {
          throw new UserError(`cannot read ${abs}: ${(err as Error).message}; nothing was written`);
        }
        out.push({ rel: r, kind: 'file', mode: st.mode & 0o7777, content });
      } else if (st.isSymbolicLink()) {
        const target = fs.readlinkSync(abs);
        const resolved = path.resolve(path.dirname(abs), target);
        if (path.isAbsolute(target) || path.relative(dir, resolved).startsWith('..')) {
          throw new UserError(`${abs} is a link out of the definition (to ${target})`, ['a package can only carry what is inside the definition: replace the link by the file']);
        }
        out.push({ rel: r, kind: 'link', mode: 0o777, target });
      } else {
        throw new UserError(`${abs} is neither a file, a directory nor a link: it cannot be packaged`);
      }
    }
  };
  walk('');
  return out;
}

/** The largest file a definition's package carries. */
const MAX_FILE_BYTES = 256 * 2 ** 20;

/**
 * Whether hidden `rel` is one of the files ganeti-os itself keeps beside a definition while or
 * after changing it: the lock (and its breaker), the writer's journal (and its temp file), the
 * writer's staged and moved-aside files, and upgrade's state directory with its backups.
 */
function isWorkingFile(rel: string): boolean {
  const n = path.posix.basename(rel);
  return (
    rel === LOCK_FILE ||
    rel === `${LOCK_FILE}.break` ||
    rel === JOURNAL_FILE ||
    rel === `${JOURNAL_FILE}.tmp` ||
    rel === STATE_DIR ||
    /\.ganeti-os-(new|old)/.test(n)
  );
}

/** The marker lines of unresolved merge conflicts (conflictMarkerLines), as "file:line: text". */
export function conflictMarkers(entries: { rel: string; kind: string; content?: Buffer }[]): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (e.kind !== 'file' || !e.content || e.content.includes(0)) continue;
    for (const m of conflictMarkerLines(e.content.toString('utf8'))) out.push(`${e.rel}:${m.line}: ${m.text}`);
  }
  return out;
}

interface Staged {
  rel: string;
  kind: 'file' | 'dir' | 'link';
  /** Bytes, for regular files. */
  size?: number;
}

function walkStaged(root: string, withDebian = false): Staged[] {
  const out: Staged[] = [];
  const walk = (rel: string) => {
    for (const n of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      if (!withDebian && r === 'DEBIAN') continue;
      const st = fs.lstatSync(path.join(root, r));
      if (st.isDirectory()) {
        out.push({ rel: r, kind: 'dir' });
        walk(r);
      } else if (st.isSymbolicLink()) out.push({ rel: r, kind: 'link' });
      else out.push({ rel: r, kind: 'file', size: st.size });
    }
  };
  walk('');
  return out;
}
