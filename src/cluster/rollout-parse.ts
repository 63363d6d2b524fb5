/**
 * Reading what Ganeti 3.0's command-line tools print. `gnt-cluster copyfile` and
 * `gnt-cluster command` exit 0 even when nodes fail, so their output is the only verdict:
 * formats from ganeti/client/gnt_cluster.py (ClusterCopyFile, RunClusterCommand),
 * ganeti/cli.py (GetOnlineNodes), ganeti/client/gnt_os.py (DiagnoseOS) and
 * ganeti/cmdlib/cluster/verify.py (_Error with --error-codes).
 */

/** `gnt-cluster copyfile`'s stderr: nodes the copy failed on, and offline nodes it skipped. */
export interface CopyfileResult {
  /** Node name -> the file that failed ("Copy of file %s to node %s:%d failed"). */
  failed: Map<string, string>;
  /** From "Note: skipping offline node(s): a, b" (cli.GetOnlineNodes). */
  offline: string[];
  /** Lines we do not recognise (shown to the user, never ignored silently). */
  other: string[];
}

export function parseCopyfile(stderr: string): CopyfileResult {
  const failed = new Map<string, string>();
  const offline: string[] = [];
  const other: string[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.trim()) continue;
    const copy = /^Copy of file (.+) to node (.+):(\d+) failed$/.exec(line);
    if (copy) {
      failed.set(copy[2], copy[1]);
      continue;
    }
    const off = parseOfflineNote(line);
    if (off) {
      offline.push(...off);
      continue;
    }
    other.push(line);
  }
  return { failed, offline, other };
}

/** "Note: skipping offline node(s): a, b" -> [a, b] (utils.CommaJoin joins with ", "). */
export function parseOfflineNote(line: string): string[] | undefined {
  const m = /^Note: skipping offline node\(s\): (.*)$/.exec(line.trim());
  return m ? m[1].split(', ').filter(Boolean) : undefined;
}

/** One node's part of `gnt-cluster command` output. */
export interface CommandBlock {
  node: string;
  /** What the command printed (stdout and stderr together, as Ganeti's RunCmd collects them). */
  output: string;
  /** The exit code ("return code = %s"); for ssh failures 255. */
  returnCode: number;
}

const SEPARATOR = '-'.repeat(48);

/**
 * `gnt-cluster command` stdout (without -M): for each node, the separator line, "node: NAME",
 * the output, "return code = N". The master comes last. Nodes with no block were not reached.
 */
export function parseCommandOutput(stdout: string): CommandBlock[] {
  const lines = stdout.split('\n');
  const blocks: CommandBlock[] = [];
  let i = 0;
  while (i < lines.length) {
    if (lines[i] === SEPARATOR && i + 1 < lines.length && lines[i + 1].startsWith('node: ')) {
      const node = lines[i + 1].slice('node: '.length).trim();
      let j = i + 2;
      const body: string[] = [];
      // The block ends at the next separator followed by "node: " (or the end).
      while (j < lines.length && !(lines[j] === SEPARATOR && j + 1 < lines.length && lines[j + 1].startsWith('node: '))) body.push(lines[j++]);
      while (body.length && body[body.length - 1] === '') body.pop();
      let returnCode = NaN;
      const last = body.length ? /^return code = (-?\d+)$/.exec(body[body.length - 1]) : null;
      if (last) {
        returnCode = Number(last[1]);
        body.pop();
        // RunClusterCommand prints the output with its own newline: drop the blank line it leaves.
        while (body.length && body[body.length - 1] === '') body.pop();
      }
      blocks.push({ node, output: body.join('\n'), returnCode });
      i = j;
    } else {
      i++;
    }
  }
  return blocks;
}

/** One node's line in `gnt-os diagnose` for an OS. */
export interface DiagnoseNode {
  /** As gnt-os prints it: Ganeti 3.0 prints node UUIDs here. */
  node: string;
  valid: boolean;
  /** "valid" or "invalid - <Ganeti's message>" or "OS not found". */
  status: string;
  path?: string;
  /** Entries of the same OS further down the search path, shadowed by `path`. */
  hidden: string[];
}

export interface DiagnoseOs {
  name: string;
  /** "valid", "invalid" or "partial valid". */
  global: string;
  variants: string[];
  nodes: DiagnoseNode[];
}

/** `gnt-os diagnose` stdout (client/gnt_os.py DiagnoseOS). */
export function parseOsDiagnose(stdout: string): DiagnoseOs[] {
  const out: DiagnoseOs[] = [];
  let cur: DiagnoseOs | undefined;
  let node: DiagnoseNode | undefined;
  for (const line of stdout.split('\n')) {
    const os = /^OS: (\S+) \[global status: ([^\]]+)\]/.exec(line);
    if (os) {
      cur = { name: os[1], global: os[2], variants: [], nodes: [] };
      out.push(cur);
      node = undefined;
      continue;
    }
    if (!cur) continue;
    const variants = /^ {2}Variants: \[(.*)\]$/.exec(line);
    if (variants) {
      cur.variants = variants[1] ? variants[1].split(', ') : [];
      continue;
    }
    const n = /^ {2}Node: (.+?), status: (.*)$/.exec(line);
    if (n) {
      const status = n[2];
      const p = / \(path: ([^)]*)\)/.exec(status);
      node = { node: n[1], valid: status.startsWith('valid'), status: status.replace(/ \(path: [^)]*\).*$/, ''), path: p?.[1], hidden: [] };
      cur.nodes.push(node);
      continue;
    }
    const h = /^ {4}\[hidden\] path: (.+?), status: /.exec(line);
    if (h && node) node.hidden.push(h[1]);
  }
  return out;
}

export interface VerifyError {
  /** ERROR or WARNING. */
  level: string;
  code: string;
  /** "node", "instance", "cluster", "group"... */
  objectType: string;
  object: string;
  message: string;
}

/**
 * `gnt-cluster verify --error-codes` lines: "  - ERROR:ENODEOS:node:NAME:message", possibly
 * after the job feedback's timestamp.
 */
export function parseVerifyErrors(stdout: string): VerifyError[] {
  const out: VerifyError[] = [];
  for (const line of stdout.split('\n')) {
    const m = /(?:^|\s)- (ERROR|WARNING):([A-Z0-9_]+):([a-z]+):([^:]*):(.*)$/.exec(line);
    if (m) out.push({ level: m[1], code: m[2], objectType: m[3], object: m[4], message: m[5] });
  }
  return out;
}

/** Whether an ENODEOS message concerns OS `name` (or the node's whole OS scan failed). */
export function enodeosConcerns(message: string, name: string): boolean {
  if (/hasn't returned valid OS data/.test(message)) return true;
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[\\s'",:(\\[])${esc}([\\s'",:)\\]]|$)`).test(message);
}

/** What our node script prints: lines "GOS|kind|field|...". */
export interface NodeFacts {
  /** dpkg's status abbreviation ("ii ") and version of the package, when asked. */
  packageStatus?: string;
  packageVersion?: string;
  /** "installed", "already" (same version, not reinstalled), "failed", "copy-missing". */
  install?: string;
  installRc?: number;
  /** dpkg's own words when the install failed. */
  installLog: string[];
  /** `dpkg --verify` lines (empty when the package is intact). */
  verify: string[];
  /** Per OS name: the directory Ganeti uses (first in the search path) and those it shadows. */
  os: Map<string, { path: string; shadowed: string[]; files: Map<string, string> }>;
}

/** Parses the output of the script built by rollout.ts (nodeScript) for one node. */
export function parseNodeFacts(output: string): NodeFacts {
  const facts: NodeFacts = { installLog: [], verify: [], os: new Map() };
  for (const line of output.split('\n')) {
    if (!line.startsWith('GOS|')) continue;
    const f = line.split('|');
    switch (f[1]) {
      case 'pkg':
        facts.packageStatus = f[2];
        facts.packageVersion = f.slice(3).join('|');
        break;
      case 'install':
        facts.install = f[2];
        if (f[3] !== undefined) facts.installRc = Number(f[3]);
        break;
      case 'dpkg':
        facts.installLog.push(f.slice(2).join('|'));
        break;
      case 'verify':
        facts.verify.push(f.slice(2).join('|'));
        break;
      case 'os':
        facts.os.set(f[2], { path: f.slice(3).join('|'), shadowed: [], files: new Map() });
        break;
      case 'shadow':
        facts.os.get(f[2])?.shadowed.push(f.slice(3).join('|'));
        break;
      case 'f':
        // GOS|f|NAME|MODE|SHA256|PATH
        facts.os.get(f[2])?.files.set(f.slice(5).join('|'), `${f[3]} ${f[4]}`);
        break;
      case 'l':
        // GOS|l|NAME|TARGET|PATH
        facts.os.get(f[2])?.files.set(f.slice(4).join('|'), `link ${f[3]}`);
        break;
      case 'd':
        facts.os.get(f[2])?.files.set(f.slice(4).join('|') + '/', `dir ${f[3]}`);
        break;
    }
  }
  return facts;
}
