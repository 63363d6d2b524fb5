/** `ganeti-os nodes-check [NAME]`: compare installed OS definitions across the cluster's nodes. */
import type { Context } from '../context';
import { SilentFailure, UsageError } from '../errors';
import { nodesCheck, spawnRunner } from '../cluster/rollout';
import { checkOsName } from '../ganeti/rules';

export interface NodesCheckOptions {
  name?: string;
  node?: string[];
  nodegroup?: string;
  json?: boolean;
}

export async function runNodesCheck(ctx: Context, opts: NodesCheckOptions): Promise<void> {
  const bad = opts.name !== undefined ? checkOsName(opts.name) : undefined;
  if (bad) throw new UsageError(bad);
  const report = nodesCheck(opts.name ? [opts.name] : [], { nodes: opts.node, nodegroup: opts.nodegroup }, spawnRunner(ctx.env));
  if (opts.json) {
    ctx.out.write(JSON.stringify(report, null, 2) + '\n');
  } else {
    const lines: string[] = [];
    for (const o of report.os) {
      const differ = o.nodes.filter((n) => !n.same);
      lines.push(`${o.name}: ${differ.length ? `${differ.length} of ${o.nodes.length} nodes differ` : `same on all ${o.nodes.length} nodes`} (reference ${o.reference})`);
      for (const n of o.nodes) {
        lines.push(`  ${n.node}: ${n.same ? 'same' : 'differs'}${n.path ? ` (${n.path}${n.digest ? `, ${n.digest}` : ''})` : ''}`);
        for (const d of n.differences) lines.push(`    - ${d}`);
      }
    }
    if (opts.name && !report.os.length) lines.push(`${opts.name}: not found on any node`);
    for (const n of report.offline) lines.push(`${n}: offline, not checked`);
    for (const n of report.unreachable) lines.push(`${n}: not reached by gnt-cluster command`);
    ctx.out.write(lines.join('\n') + '\n');
  }
  if (!report.ok || (opts.name && !report.os.length)) throw new SilentFailure();
}
