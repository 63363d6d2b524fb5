/** `ganeti-os rollout PACKAGE.deb`: install a packed definition on the cluster's nodes and check each one. */
import * as path from 'node:path';
import type { Context } from '../context';
import { SilentFailure } from '../errors';
import { inspectDeb, rollout, rolloutCommands, spawnRunner } from '../cluster/rollout';
import { shq } from '../definition/shell';

export interface RolloutOptions {
  package: string;
  node?: string[];
  nodegroup?: string;
  reinstall?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export async function runRollout(ctx: Context, opts: RolloutOptions): Promise<void> {
  const info = inspectDeb(path.resolve(ctx.cwd, opts.package));
  const sel = { deb: info.path, nodes: opts.node, nodegroup: opts.nodegroup, reinstall: opts.reinstall };
  if (opts.dryRun) {
    const { commands } = rolloutCommands(info, sel);
    if (opts.json) ctx.out.write(JSON.stringify({ package: info.package, version: info.version, os: info.osName, dryRun: true, commands }, null, 2) + '\n');
    else ctx.out.write(commands.map((c) => c.map(shq).join(' ')).join('\n') + '\n');
    return;
  }
  const report = rollout(info, sel, spawnRunner(ctx.env), (m) => ctx.log.info(m));
  for (const w of report.warnings) ctx.log.warn(w);
  if (opts.json) {
    ctx.out.write(JSON.stringify({ ...report, commands: undefined }, null, 2) + '\n');
  } else {
    const lines = [`${report.package} ${report.version} (OS ${report.os}, files ${report.digest.slice(0, 16)}):`];
    for (const n of report.nodes) {
      const what = n.state === 'done' ? `done${n.install === 'already' ? ' (already installed)' : ''}` : n.state === 'offline' ? 'offline: skipped; once it is back: ganeti-os rollout ' + shq(opts.package) + ' -n ' + n.node : 'failed';
      lines.push(`  ${n.node}: ${what}`);
      for (const p of n.problems) lines.push(`    - ${p}`);
      for (const p of n.notes) lines.push(`    note: ${p}`);
    }
    const done = report.nodes.filter((n) => n.state === 'done').length;
    lines.push(`${done} of ${report.nodes.length} nodes done${report.nodes.some((n) => n.state === 'offline') ? `, ${report.nodes.filter((n) => n.state === 'offline').length} offline` : ''}`);
    ctx.out.write(lines.join('\n') + '\n');
  }
  if (!report.ok) throw new SilentFailure();
}
