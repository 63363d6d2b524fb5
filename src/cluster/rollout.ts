/**
 * Rolling a packed OS definition out to a Ganeti cluster with Ganeti's own tools only, and
 * comparing installed definitions across nodes. Runs on the master node:
 *
 *   gnt-node list                       which nodes exist, are offline, in which group
 *   gnt-cluster copyfile FILE           the .deb to the other online nodes (same path)
 *   gnt-cluster command 'bash --norc -c ...'   install with dpkg -i, then report what the node has
 *   gnt-os diagnose                     Ganeti's verdict on the OS, per node
 *   gnt-cluster verify --error-codes    no ENODEOS for this OS
 *
 * copyfile and command exit 0 even when nodes fail: their output is parsed (rollout-parse.ts).
 * Ganeti compares API versions, variants and parameters across nodes, never the scripts: the
 * file-by-file listing of the installed OS directory is compared here, against the .deb.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UsageError, UserError } from '../errors';
import { shq } from '../definition/shell';
import { OS_SEARCH_PATH } from '../ganeti/rules';
import {
  DiagnoseOs,
  NodeFacts,
  enodeosConcerns,
  parseCommandOutput,
  parseCopyfile,
  parseNodeFacts,
  parseOfflineNote,
  parseOsDiagnose,
  parseVerifyErrors,
} from './rollout-parse';

import { PACKAGED_OS_ROOT } from '../package/debian';
import { RunResult, runSync } from '../system/process';
/** Where the .deb is staged on the master and copied to on the nodes (exists on every Debian node). */
const STAGING_DIR = '/var/tmp';
/**
 * dpkg's conffile policy, stated: keep a conffile the admin edited (the new one lands beside it
 * as .dpkg-dist), take the new one where it was not edited; never ask.
 */
export const DPKG_INSTALL = ['dpkg', '--force-confdef', '--force-confold', '-i'];

/** What a Runner answers: of the process layer's RunResult, what rollout reads. */
export type RunnerAnswer = Pick<RunResult, 'status' | 'stdout' | 'stderr'>;
/** Runs one command on the master (argv, no shell). Tests pass a fake. */
export type Runner = (argv: string[]) => RunnerAnswer;

export const spawnRunner =
  (env: Record<string, string | undefined>): Runner =>
  (argv) => {
    const r = runSync(argv, {
      stdin: 'pipe',
      env: { PATH: env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', HOME: env.HOME ?? '/root' },
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.error) throw new UserError(`cannot run ${argv[0]}: ${r.error.message}`, ['rollout and nodes-check run on the master node of a Ganeti cluster']);
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

export interface DebInfo {
  path: string;
  package: string;
  version: string;
  osName: string;
  sha256: string;
  /** The OS directory as the package installs it: "path" -> "mode sha256" | "link target" | "dir mode". */
  files: Map<string, string>;
}

/** Reads a .deb from `ganeti-os pack` (dpkg-deb). Throws a UserError for anything else. */
export function inspectDeb(deb: string): DebInfo {
  if (!fs.existsSync(deb)) throw new UsageError(`${deb} does not exist`);
  const field = (f: string) => {
    const r = runSync(['dpkg-deb', '-f', deb, f], { stdin: 'pipe' });
    if (r.status !== 0) throw new UserError(`${deb} is not a Debian package: ${(r.stderr || '').trim()}`);
    return r.stdout.trim();
  };
  const pkg = field('Package');
  const version = field('Version');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ganeti-os-deb-'));
  try {
    const x = runSync(['dpkg-deb', '-x', deb, tmp], { stdin: 'pipe' });
    if (x.status !== 0) throw new UserError(`cannot unpack ${deb}: ${x.stderr.trim()}`);
    const root = path.join(tmp, PACKAGED_OS_ROOT);
    const names = fs.existsSync(root) ? fs.readdirSync(root) : [];
    if (names.length !== 1) throw new UserError(`${deb} does not install exactly one OS definition in ${PACKAGED_OS_ROOT} (it is not from ganeti-os pack)`);
    const osName = names[0];
    return { path: deb, package: pkg, version, osName, sha256: sha256File(deb), files: listTree(path.join(root, osName)) };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function sha256File(p: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

/** The same listing the node script prints, of a local directory. */
export function listTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const n of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const abs = path.join(dir, r);
      const st = fs.lstatSync(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.set(r + '/', `dir ${mode}`);
        walk(r);
      } else if (st.isSymbolicLink()) out.set(r, `link ${fs.readlinkSync(abs)}`);
      else out.set(r, `${mode} ${sha256File(abs)}`);
    }
  };
  walk('');
  return out;
}

/** sha256 over a listing (sorted "path value" lines): equal listings, equal digests. */
export function listingDigest(files: Map<string, string>): string {
  const lines = [...files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([p, v]) => `${p} ${v}\n`);
  return crypto.createHash('sha256').update(lines.join('')).digest('hex');
}

/** Files that differ between two listings: changed, missing (in `want`, not in `got`), extra. */
export function diffListings(want: Map<string, string>, got: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, v] of want) {
    const g = got.get(p);
    if (g === undefined) out.push(`${p} missing`);
    else if (g !== v) out.push(`${p} differs${describeDiff(v, g)}`);
  }
  for (const p of got.keys()) if (!want.has(p)) out.push(`${p} extra`);
  return out.sort();
}

function describeDiff(want: string, got: string): string {
  const [wm, ws] = want.split(' ');
  const [gm, gs] = got.split(' ');
  if (wm !== gm && ws === gs) return ` (mode ${gm}, expected ${wm})`;
  if (wm === gm) return ' (content)';
  return ` (${got.startsWith('link') || want.startsWith('link') ? `${got} vs ${want}` : `mode ${gm} and content`})`;
}

/**
 * The bash script every node runs through `gnt-cluster command`: optionally install the staged
 * .deb (unless the same version is installed already), then print, one "GOS|..." line each,
 * the package's status and version, `dpkg --verify`, and for each OS the directory Ganeti uses,
 * the ones it shadows, and every file under it with mode and sha256.
 */
export function nodeScript(opts: {
  osNames?: string[];
  package?: string;
  install?: { staged: string; sha256: string; version: string; reinstall: boolean };
  /** Ganeti's OS search path (tests point it elsewhere). */
  searchPath?: string[];
}): string {
  const search = (opts.searchPath ?? OS_SEARCH_PATH).map(shq).join(' ');
  const lines = ['export LC_ALL=C DEBIAN_FRONTEND=noninteractive', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin'];
  if (opts.package) lines.push(`pkg=${shq(opts.package)}`);
  if (opts.install) {
    const i = opts.install;
    lines.push(
      `deb=${shq(i.staged)}`,
      `cur=$(dpkg-query -W -f='\${db:Status-Abbrev}|\${Version}' "$pkg" 2>/dev/null)`,
      `if [ ${i.reinstall ? '1' : '0'} = 0 ] && [ "$cur" = ${shq(`ii |${i.version}`)} ]; then echo 'GOS|install|already'`,
      `elif [ ! -f "$deb" ] || [ "$(sha256sum <"$deb" | cut -c1-64)" != ${shq(i.sha256)} ]; then echo 'GOS|install|copy-missing'`,
      'else',
      `  log=$(${DPKG_INSTALL.join(' ')} "$deb" 2>&1); rc=$?`,
      '  if [ "$rc" = 0 ]; then echo \'GOS|install|installed\'; else echo "GOS|install|failed|$rc"; printf \'%s\\n\' "$log" | tail -n 15 | sed \'s/^/GOS|dpkg|/\'; fi',
      'fi',
      'rm -f -- "$deb"',
    );
  }
  if (opts.package) {
    lines.push(
      `echo "GOS|pkg|$(dpkg-query -W -f='\${db:Status-Abbrev}|\${Version}' "$pkg" 2>/dev/null)"`,
      'dpkg --verify "$pkg" 2>&1 | sed \'s/^/GOS|verify|/\'',
    );
  }
  const names = opts.osNames?.length ? opts.osNames.map(shq).join(' ') : `$(for d in ${search}; do [ -d "$d" ] && ls -1 "$d"; done | sort -u)`;
  lines.push(
    `for n in ${names}; do`,
    '  first=',
    `  for d in ${search}; do`,
    '    [ -d "$d/$n" ] || continue',
    '    if [ -z "$first" ]; then first=$d/$n; echo "GOS|os|$n|$first"; else echo "GOS|shadow|$n|$d/$n"; fi',
    '  done',
    '  [ -n "$first" ] || continue',
    '  (',
    '    cd "$first" || exit 0',
    '    find . -mindepth 1 -type d -printf "GOS|d|$n|%m|%P\\n" -o -type l -printf "GOS|l|$n|%l|%P\\n"',
    '    find . -mindepth 1 -type f -printf \'%m %P\\n\' | while read -r m p; do printf \'GOS|f|%s|%s|%s|%s\\n\' "$n" "$m" "$(sha256sum <"$p" | cut -c1-64)" "$p"; done',
    '  )',
    'done',
    'exit 0',
  );
  return lines.join('\n');
}

export interface ClusterNode {
  name: string;
  uuid: string;
  offline: boolean;
  group: string;
  master: boolean;
}

/** `gnt-node list` as typed nodes. */
export function listNodes(run: Runner): ClusterNode[] {
  const r = run(['gnt-node', 'list', '--no-headers', '--separator=|', '-o', 'name,uuid,offline,group,master']);
  if (r.status !== 0) throw new UserError(`gnt-node list failed: ${(r.stderr || r.stdout).trim()}`, ['run this on the master node of a Ganeti cluster']);
  return r.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [name, uuid, offline, group, master] = l.split('|');
      return { name, uuid, offline: offline === 'Y', group, master: master === 'Y' };
    });
}

export interface Selection {
  nodes?: string[];
  nodegroup?: string;
}

/** The nodes a selection names (gnt-cluster's -n / -g semantics). Throws a UsageError for unknown nodes or groups. */
export function selectNodes(all: ClusterNode[], sel: Selection): ClusterNode[] {
  let chosen = all;
  if (sel.nodes?.length) {
    const unknown = sel.nodes.filter((n) => !all.some((a) => a.name === n || a.name.startsWith(n + '.')));
    if (unknown.length) throw new UsageError(`unknown node(s): ${unknown.join(', ')}`, [`nodes of this cluster: ${all.map((a) => a.name).join(', ')}`]);
    chosen = all.filter((a) => sel.nodes!.some((n) => a.name === n || a.name.startsWith(n + '.')));
  }
  if (sel.nodegroup !== undefined) {
    chosen = chosen.filter((a) => a.group === sel.nodegroup);
    if (!all.some((a) => a.group === sel.nodegroup)) throw new UsageError(`unknown node group '${sel.nodegroup}'`);
  }
  return chosen;
}

function selectionArgs(sel: Selection): string[] {
  const out: string[] = [];
  for (const n of sel.nodes ?? []) out.push('-n', n);
  if (sel.nodegroup !== undefined) out.push('-g', sel.nodegroup);
  return out;
}

export type NodeState = 'done' | 'failed' | 'offline';

export interface NodeReport {
  node: string;
  state: NodeState;
  /** Why it failed (empty when done). */
  problems: string[];
  /** Worth knowing, not a failure (e.g. a conffile the admin edited). */
  notes: string[];
  install?: string;
  version?: string;
  digest?: string;
}

export interface RolloutReport {
  package: string;
  version: string;
  os: string;
  /** Digest of the OS directory the package installs. */
  digest: string;
  nodes: NodeReport[];
  /** About the run, not a node (e.g. a Ganeti tool that crashed). */
  warnings: string[];
  ok: boolean;
  commands: string[][];
}

export interface RolloutOptions extends Selection {
  deb: string;
  reinstall?: boolean;
  dryRun?: boolean;
}

/** The commands a rollout runs, in order (what --dry-run prints). */
export function rolloutCommands(info: DebInfo, opts: RolloutOptions): { staged: string; commands: string[][] } {
  const staged = path.join(STAGING_DIR, `ganeti-os-rollout.${info.sha256.slice(0, 12)}.${path.basename(info.path)}`);
  const sel = selectionArgs(opts);
  const script = nodeScript({ osNames: [info.osName], package: info.package, install: { staged, sha256: info.sha256, version: info.version, reinstall: !!opts.reinstall } });
  return {
    staged,
    commands: [
      ['gnt-node', 'list', '--no-headers', '--separator=|', '-o', 'name,uuid,offline,group,master'],
      ['cp', info.path, staged],
      ['gnt-cluster', 'copyfile', ...sel, staged],
      ['gnt-cluster', 'command', ...sel, `bash --norc -c ${shq(script)}`],
      ['gnt-os', 'diagnose'],
      ['gnt-cluster', 'verify', '--error-codes', ...(opts.nodegroup !== undefined ? ['--node-group', opts.nodegroup] : [])],
    ],
  };
}

/**
 * Installs `info` on the selected nodes and checks each one. Every online selected node ends
 * `done` (right version installed, dpkg --verify clean apart from edited conffiles, files equal
 * to the package's, not shadowed, valid in gnt-os diagnose, no ENODEOS in gnt-cluster verify)
 * or `failed` with the reasons; offline nodes are reported as such.
 */
export function rollout(info: DebInfo, opts: RolloutOptions, run: Runner, narrate: (m: string) => void): RolloutReport {
  const { staged, commands } = rolloutCommands(info, opts);
  const all = listNodes(run);
  const chosen = selectNodes(all, opts);
  const reports = new Map<string, NodeReport>(chosen.map((n) => [n.name, { node: n.name, state: n.offline ? 'offline' : 'done', problems: [], notes: [] }]));
  const fail = (node: string, why: string) => {
    const r = reports.get(node);
    if (!r || r.state === 'offline') return;
    r.state = 'failed';
    if (!r.problems.includes(why)) r.problems.push(why);
  };

  narrate(`Copying ${path.basename(info.path)} to the nodes (gnt-cluster copyfile)`);
  fs.copyFileSync(info.path, staged);
  try {
    const copy = run(commands[2]);
    const copied = parseCopyfile(copy.stderr);
    for (const [node] of copied.failed) fail(node, 'gnt-cluster copyfile could not copy the package there');
    markOffline(reports, copied.offline);
    if (copy.status !== 0) throw new UserError(`gnt-cluster copyfile failed: ${(copy.stderr || copy.stdout).trim()}`);
    for (const l of copied.other) narrate(`gnt-cluster copyfile: ${l}`);

    narrate(`Installing ${info.package} ${info.version} and reading back every node (gnt-cluster command)`);
    const cmd = run(commands[3]);
    if (cmd.status !== 0) throw new UserError(`gnt-cluster command failed: ${(cmd.stderr || cmd.stdout).trim()}`);
    for (const l of cmd.stderr.split('\n')) {
      const off = parseOfflineNote(l);
      if (off) markOffline(reports, off);
    }
    const blocks = new Map(parseCommandOutput(cmd.stdout).map((b) => [b.node, b]));
    for (const r of reports.values()) {
      if (r.state === 'offline') continue;
      const b = blocks.get(r.node);
      if (!b) {
        fail(r.node, 'gnt-cluster command did not reach it');
        continue;
      }
      if (b.returnCode !== 0) {
        fail(r.node, `gnt-cluster command: return code ${b.returnCode}${b.output ? `: ${lastLine(b.output)}` : ''}`);
        continue;
      }
      judgeNode(r, parseNodeFacts(b.output), info);
    }
  } finally {
    fs.rmSync(staged, { force: true });
  }

  narrate('Asking Ganeti (gnt-os diagnose, gnt-cluster verify)');
  const warnings: string[] = [];
  judgeGaneti(reports, all, info.osName, run, commands[4], commands[5], warnings);
  const nodes = [...reports.values()];
  return {
    package: info.package,
    version: info.version,
    os: info.osName,
    digest: listingDigest(info.files),
    nodes,
    warnings,
    ok: nodes.every((n) => n.state !== 'failed') && nodes.some((n) => n.state === 'done'),
    commands,
  };
}

function lastLine(s: string): string {
  const l = s.trim().split('\n');
  return l[l.length - 1];
}

function markOffline(reports: Map<string, NodeReport>, names: string[]): void {
  for (const n of names) {
    const r = reports.get(n);
    if (r) {
      r.state = 'offline';
      r.problems = [];
    }
  }
}

function judgeNode(r: NodeReport, facts: NodeFacts, info: DebInfo): void {
  const fail = (why: string) => {
    r.state = 'failed';
    r.problems.push(why);
  };
  r.install = facts.install;
  r.version = facts.packageVersion;
  if (facts.install === 'copy-missing') fail('the package did not arrive (gnt-cluster copyfile failed or the copy is corrupt)');
  if (facts.install === 'failed') fail(`dpkg -i failed (exit ${facts.installRc})${facts.installLog.length ? `: ${dpkgReason(facts.installLog)}` : ''}`);
  if (facts.packageStatus?.trim() !== 'ii' || facts.packageVersion !== info.version) {
    fail(`installed: ${facts.packageVersion ? `${info.package} ${facts.packageVersion} (${facts.packageStatus?.trim()})` : 'nothing'}, expected ${info.version}`);
  }
  for (const v of facts.verify) {
    if (/^\S+ c \//.test(v)) r.notes.push(`site edit (conffile, kept by upgrades): ${v.replace(/^\S+ c /, '')}`);
    else fail(`dpkg --verify: ${v}`);
  }
  const o = facts.os.get(info.osName);
  const want = `${PACKAGED_OS_ROOT}/${info.osName}`;
  if (!o) {
    fail(`no ${info.osName} in Ganeti's search path`);
    return;
  }
  if (o.path !== want) fail(`${o.path} shadows the package's ${want} (Ganeti uses the first in its search path: remove ${o.path})`);
  r.digest = listingDigest(o.files).slice(0, 16);
  const diff = diffListings(info.files, o.files);
  if (diff.length) fail(`${o.path} differs from the package: ${diff.join(', ')}`);
}

/** dpkg's own reason, from its log: its warning and error lines with their continuation lines. */
export function dpkgReason(log: string[]): string {
  const picked: string[] = [];
  log.forEach((l, i) => {
    if (/^dpkg: (error|warning)/.test(l)) {
      picked.push(l.trim());
      for (let j = i + 1; j < log.length && /^ \S/.test(log[j]); j++) picked.push(log[j].trim());
    }
  });
  return (picked.length ? picked : log.filter((l) => l.trim()).slice(-3)).join(' / ');
}

function judgeGaneti(reports: Map<string, NodeReport>, all: ClusterNode[], osName: string, run: Runner, diagnoseCmd: string[], verifyCmd: string[], warnings: string[]): void {
  const byUuid = new Map(all.map((n) => [n.uuid, n.name]));
  const d = run(diagnoseCmd);
  const ours: DiagnoseOs | undefined = parseOsDiagnose(d.stdout).find((o) => o.name === osName);
  // Ganeti 3.0's gnt-os diagnose raises (ValueError in client/gnt_os.py DiagnoseOS, unpacking the
  // hidden entries) as soon as any node has an OS shadowed in the search path: no verdict then.
  const crashed = /Traceback \(most recent call last\)/.test(d.stderr);
  if (crashed) warnings.push(`gnt-os diagnose crashed (${lastLine(d.stderr)}); Ganeti (3.0 and 3.1) does so when an OS is shadowed on some node: its verdict is missing, the other checks stand`);
  for (const r of reports.values()) {
    if (r.state === 'offline') continue;
    if (crashed && !ours?.nodes.length) continue;
    const n = ours?.nodes.find((x) => (byUuid.get(x.node) ?? x.node) === r.node);
    if (!n) {
      r.state = 'failed';
      r.problems.push(`gnt-os diagnose does not list ${osName} on it`);
    } else if (!n.valid) {
      r.state = 'failed';
      r.problems.push(`gnt-os diagnose: ${n.status}`);
    } else if (n.path && n.path !== `${PACKAGED_OS_ROOT}/${osName}`) {
      r.state = 'failed';
      r.problems.push(`gnt-os diagnose: Ganeti uses ${n.path}, not the package's ${PACKAGED_OS_ROOT}/${osName}`);
    }
  }
  const v = run(verifyCmd);
  for (const e of parseVerifyErrors(v.stdout + '\n' + v.stderr)) {
    if (e.code !== 'ENODEOS' || !enodeosConcerns(e.message, osName)) continue;
    const r = reports.get(e.object) ?? [...reports.values()].find((x) => x.node.startsWith(e.object + '.'));
    if (r && r.state !== 'offline') {
      r.state = 'failed';
      r.problems.push(`gnt-cluster verify: ${e.level}:ENODEOS: ${e.message}`);
    }
  }
}

export interface NodesCheckReport {
  /** Per OS: the reference listing's digest and, per node, where it differs. */
  os: {
    name: string;
    reference: string;
    nodes: { node: string; path?: string; shadowed: string[]; digest?: string; differences: string[]; same: boolean }[];
  }[];
  offline: string[];
  unreachable: string[];
  ok: boolean;
}

/**
 * Compares OS directories across nodes (for definitions installed by hand too): for each OS,
 * the most common listing is the reference (ties: the master's), and every node that differs
 * is reported with the files that differ. `names` empty: every OS found on any node.
 */
export function nodesCheck(names: string[], sel: Selection, run: Runner): NodesCheckReport {
  const all = listNodes(run);
  const chosen = selectNodes(all, sel);
  const master = all.find((n) => n.master)?.name;
  const cmd = run(['gnt-cluster', 'command', ...selectionArgs(sel), `bash --norc -c ${shq(nodeScript({ osNames: names }))}`]);
  if (cmd.status !== 0) throw new UserError(`gnt-cluster command failed: ${(cmd.stderr || cmd.stdout).trim()}`);
  const offline = new Set(chosen.filter((n) => n.offline).map((n) => n.name));
  for (const l of cmd.stderr.split('\n')) for (const n of parseOfflineNote(l) ?? []) offline.add(n);
  const blocks = new Map(parseCommandOutput(cmd.stdout).map((b) => [b.node, b]));
  const facts = new Map<string, NodeFacts>();
  const unreachable: string[] = [];
  for (const n of chosen) {
    if (offline.has(n.name)) continue;
    const b = blocks.get(n.name);
    if (!b || b.returnCode !== 0) unreachable.push(n.name);
    else facts.set(n.name, parseNodeFacts(b.output));
  }
  const osNames = names.length ? names : [...new Set([...facts.values()].flatMap((f) => [...f.os.keys()]))].sort();
  const report: NodesCheckReport = { os: [], offline: [...offline], unreachable, ok: unreachable.length === 0 };
  for (const name of osNames) {
    const listings = new Map<string, { digest: string; files: Map<string, string> }>();
    for (const [node, f] of facts) {
      const o = f.os.get(name);
      if (o) listings.set(node, { digest: listingDigest(o.files), files: o.files });
    }
    const counts = new Map<string, number>();
    for (const l of listings.values()) counts.set(l.digest, (counts.get(l.digest) ?? 0) + 1);
    const best = Math.max(0, ...counts.values());
    const masterDigest = master ? listings.get(master)?.digest : undefined;
    const reference = masterDigest && counts.get(masterDigest) === best ? masterDigest : [...counts.entries()].find(([, c]) => c === best)?.[0] ?? '';
    const refFiles = [...listings.values()].find((l) => l.digest === reference)?.files ?? new Map<string, string>();
    const entry: NodesCheckReport['os'][number] = { name, reference: reference.slice(0, 16), nodes: [] };
    for (const [node, f] of facts) {
      const o = f.os.get(name);
      if (!o) {
        entry.nodes.push({ node, shadowed: [], differences: [`${name} is not installed`], same: false });
        continue;
      }
      const l = listings.get(node)!;
      const differences = l.digest === reference ? [] : diffListings(refFiles, o.files);
      if (o.shadowed.length) differences.push(`${o.path} shadows ${o.shadowed.join(', ')}`);
      entry.nodes.push({ node, path: o.path, shadowed: o.shadowed, digest: l.digest.slice(0, 16), differences, same: differences.length === 0 });
    }
    if (entry.nodes.some((n) => !n.same)) report.ok = false;
    report.os.push(entry);
  }
  return report;
}
