/**
 * `ganeti-os cluster up|down|status|exec`: a disposable real Ganeti cluster in namespaces
 * (src/cluster/box.ts), running this node's Ganeti or, with `--ganeti` naming another release,
 * that release's from a cached node root (src/cluster/node-root.ts). A definition's lifecycle through it is `ganeti-os test --cluster`.
 */
import * as path from 'node:path';
import type { Context } from '../context';
import { SilentFailure, UsageError, UserError } from '../errors';
import { DEFAULT_STATE_DIR, down, execWorkdir, MAX_NODES, nodeArgv, resolveStateDir, runningBox, status, up } from '../cluster/box';
import { CLEAN_ENV } from '../cluster/host';
import { runSync } from '../system/process';
import { resolveRootCache } from '../cluster/node-root';
import { chooseRelease, followedText } from '../ganeti/releases';

export interface ClusterOptions {
  action: 'up' | 'down' | 'status' | 'exec';
  state?: string;
  nodes?: string;
  /** --ganeti: the release the nodes run (default: chooseRelease's). */
  ganeti?: string;
  /** --cache: where node roots are kept. */
  cache?: string;
  node?: string;
  json?: boolean;
  command?: string[];
}

export async function runCluster(ctx: Context, opts: ClusterOptions): Promise<void> {
  const stateDir = resolveStateDir(ctx.cwd, opts.state, ctx.env);
  const stateFlag = stateDir === DEFAULT_STATE_DIR ? '' : ` --state ${stateDir}`;
  switch (opts.action) {
    case 'up': {
      const nodes = opts.nodes === undefined ? 1 : Number(opts.nodes);
      if (!/^\d+$/.test(opts.nodes ?? '1') || nodes < 1 || nodes > MAX_NODES) throw new UsageError(`--nodes wants a number from 1 to ${MAX_NODES}, not '${opts.nodes}'`);
      const followed = chooseRelease(opts.ganeti);
      const rootCache = resolveRootCache(ctx.cwd, opts.cache, ctx.env);
      let stop = false;
      const onSignal = () => {
        stop = true;
        ctx.log.info('interrupted: removing the half-made box');
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      process.on('SIGHUP', onSignal);
      try {
        ctx.log.info(`bringing a ${nodes}-node ${followedText(followed)} cluster up in ${stateDir}`);
        const state = await up({ stateDir, nodes, release: followed.release, rootCache, log: (l) => ctx.log.info(l), interrupted: () => stop });
        if (opts.json) {
          ctx.out.write(JSON.stringify({ ok: true, ...state }, null, 2) + '\n');
          return;
        }
        ctx.out.write(
          [
            `cluster ${state.cluster.name} (Ganeti ${followed.release}${state.ganeti?.root ? ` from the node root ${state.ganeti.root}` : ''}) is up in ${state.times.total.toFixed(1)} s (${state.nodes.map((n) => `${n.name} ${n.ip}`).join(', ')})`,
            'use it:',
            `  ganeti-os cluster exec${stateFlag} -- gnt-instance list`,
            `  ganeti-os cluster exec${stateFlag} -- gnt-os diagnose`,
            `test an OS definition through it: ganeti-os test --cluster${stateFlag} --os-dir DIR`,
            `rehearse a rollout (the master runs this ganeti-os, in your directory): ganeti-os pack, then ganeti-os cluster exec${stateFlag} -- ganeti-os rollout ./ganeti-os-NAME_1_all.deb`,
            `install an OS definition by hand: copy it to ${path.join(stateDir, 'nodes', '<node>', 'srv', 'ganeti', 'os')}/ on every node`,
            `stop it: ganeti-os cluster down${stateFlag}`,
            '',
          ].join('\n'),
        );
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.off('SIGHUP', onSignal);
      }
      return;
    }
    case 'down': {
      if (process.getuid?.() !== 0) throw new UserError('cluster down needs root');
      const r = down({ stateDir, log: (l) => ctx.log.info(l) });
      if (opts.json) ctx.out.write(JSON.stringify({ ok: true, stateDir, ...r }, null, 2) + '\n');
      else if (!r.found) ctx.log.info(`no box at ${stateDir}: nothing to do`);
      return;
    }
    case 'status': {
      const s = status(stateDir);
      if (opts.json) {
        ctx.out.write(JSON.stringify(s, null, 2) + '\n');
      } else if (s.state === 'absent') {
        ctx.out.write(`no box at ${stateDir}\n`);
      } else {
        const release = s.ganeti?.release ? `, Ganeti ${s.ganeti.release}${s.ganeti.root ? ` from the node root ${s.ganeti.root}` : " (this node's)"}` : '';
        ctx.out.write(`box at ${stateDir}: ${s.state}${s.cluster ? ` (cluster ${s.cluster.name} ${s.cluster.ip}${release})` : ''}\n`);
        for (const n of s.nodes) {
          const procs = Object.entries(n.processes)
            .sort()
            .map(([k, v]) => (v > 1 ? `${k}×${v}` : k))
            .join(' ');
          ctx.out.write(`  ${n.name} ${n.ip}: ${n.running ? `running: ${procs}` : 'not running'}\n`);
        }
      }
      if (s.state !== 'running') throw new SilentFailure();
      return;
    }
    case 'exec': {
      const argv = opts.command ?? [];
      if (!argv.length) throw new UsageError('cluster exec needs a command: ganeti-os cluster exec -- gnt-instance list');
      const box = runningBox(stateDir);
      const node = opts.node ? box.nodes.find((n) => n.name === opts.node || n.name.split('.')[0] === opts.node) : box.nodes[0];
      if (!node) throw new UsageError(`no node '${opts.node}' in the box (${box.nodes.map((n) => n.name).join(', ')})`);
      const env = { ...CLEAN_ENV, ...(ctx.env.TERM ? { TERM: ctx.env.TERM } : {}) };
      const where = execWorkdir(box, node, ctx.cwd);
      if (where.note) ctx.log.info(where.note);
      const full = nodeArgv(node, argv, where.wd);
      const r = runSync(full, { stdin: 'inherit', stdout: 'inherit', stderr: 'inherit', env });
      if (r.error) throw new UserError(`cannot run ${argv[0]} in the box: ${r.error.message}`);
      if (r.status !== 0) throw new SilentFailure(r.status > 0 ? r.status : 1);
      return;
    }
    default:
      throw new UsageError(`unknown cluster action '${String(opts.action)}'`);
  }
}
