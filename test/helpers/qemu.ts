/**
 * Boot a disk image under QEMU (src/boot/qemu.ts: software emulation, serial console to a file)
 * and wait for a pattern on its console. QEMU is stopped on every path.
 */
import * as fs from 'node:fs';
import { bootUntilReady } from '../../src/boot/qemu';

export interface BootResult {
  matched: boolean;
  console: string;
  seconds: number;
}

export async function bootUntil(disk: string, pattern: RegExp, opts: { log: string; timeoutMs: number; mac?: string; memMiB?: number }): Promise<BootResult> {
  const r = await bootUntilReady({
    disks: [disk],
    macs: [opts.mac ?? 'aa:00:00:00:00:01'],
    plan: { mode: 'disk', reason: 'test' },
    consoleLog: opts.log,
    timeoutSeconds: opts.timeoutMs / 1000,
    ready: pattern,
    memMiB: opts.memMiB,
  });
  const text = fs.readFileSync(opts.log, 'utf8');
  return { matched: r.ready, console: r.ready ? text : `${text}\n[${r.problem}]`, seconds: r.seconds };
}
