/**
 * Boot a disk image under qemu with software emulation (/dev/kvm guests hang on the build
 * machines) and wait for a pattern on its serial console. qemu is killed on every path.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';

export interface BootResult {
  matched: boolean;
  console: string;
  seconds: number;
}

export async function bootUntil(disk: string, pattern: RegExp, opts: { log: string; timeoutMs: number; mac?: string; memMiB?: number }): Promise<BootResult> {
  fs.writeFileSync(opts.log, '');
  const args = [
    '-accel', 'tcg', '-m', String(opts.memMiB ?? 1024), '-smp', '1', '-display', 'none', '-monitor', 'none', '-no-reboot',
    '-drive', `file=${disk},format=raw,if=virtio`,
    '-serial', `file:${opts.log}`,
    '-nic', `user,model=virtio-net-pci,mac=${opts.mac ?? 'aa:00:00:00:00:01'}`,
  ];
  const start = Date.now();
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  qemu.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  qemu.on('exit', () => (exited = true));
  try {
    for (;;) {
      const text = fs.readFileSync(opts.log, 'utf8');
      if (pattern.test(text)) return { matched: true, console: text, seconds: (Date.now() - start) / 1000 };
      if (exited) return { matched: false, console: text + `\n[qemu exited: ${stderr}]`, seconds: (Date.now() - start) / 1000 };
      if (Date.now() - start > opts.timeoutMs) return { matched: false, console: text + '\n[timed out]', seconds: (Date.now() - start) / 1000 };
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    if (!exited) {
      qemu.kill('SIGKILL');
      await new Promise((r) => qemu.once('exit', r));
    }
  }
}
