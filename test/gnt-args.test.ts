/**
 * Issue 22: `test --cluster` builds Ganeti's command lines in Ganeti's syntax, and a refusal
 * step passes only when Ganeti refuses the bad parameter or variant by name. The command lines
 * are parsed back by Ganeti 3.0's own option parser (cli_opts), the refusals are Ganeti's own
 * ValidateOS errors (test/ganeti/harness.py).
 */
import { runSync } from '../src/system/process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hvOption, keyValList, refusalNaming } from '../src/cluster/gnt-args';
import { instanceAddOptions, osparamOptions } from '../src/lifecycle/cluster';
import { cli, tempDir } from './helpers/cli';
import { validateOs } from './helpers/ganeti';
import { GANETI_PYTHON, describeSystem, ganetiPythonPath } from './helpers/system';

const SHAPE = { diskTemplate: 'file' as const, diskMib: 512, hypervisor: 'kvm' as const, memoryMib: 256 };

describe('the gnt-instance add command line', () => {
  it('-H is hypervisor:key=value,... (not hypervisor,key=value)', () => {
    const args = instanceAddOptions({ ...SHAPE, hvparams: ['kernel_path='] }, 'node1.example.com');
    expect(args[args.indexOf('-H') + 1]).toBe('kvm:kernel_path=');
    expect(args).toEqual(['-t', 'file', '--disk', '0:size=512M', '-H', 'kvm:kernel_path=', '-B', 'minmem=256M,maxmem=256M', '--no-ip-check', '--no-name-check', '-n', 'node1.example.com']);
    expect(instanceAddOptions({ ...SHAPE, hypervisor: 'fake', hvparams: [] }, 'n')[5]).toBe('fake');
  });

  it('commas and backslashes in values are escaped, colons kept', () => {
    expect(hvOption('kvm', ['kvm_extra=-accel tcg,thread=single', 'kernel_args=ro root=/dev/vda1:x'])).toBe('kvm:kvm_extra=-accel tcg\\,thread=single,kernel_args=ro root=/dev/vda1:x');
    expect(keyValList(['a=b\\,c'])).toBe('a=b\\\\\\,c');
    expect(osparamOptions([])).toEqual([]);
    expect(osparamOptions(['dns-servers=1.1.1.1,8.8.8.8'])).toEqual(['-O', 'dns-servers=1.1.1.1\\,8.8.8.8']);
  });
});

describe('refusalNaming: a refusal step passes only on the refusal it expects', () => {
  const prereq = (details: string) => `Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\nOS Parameters validation failed on node node1.example.com: ${details}\n`;
  it('a protocol error, or a command Ganeti could not parse, is not a refusal', () => {
    for (const out of [
      'Unhandled protocol error while talking to the master daemon:\nConnection closed unexpectedly\n',
      "Usage: gnt-instance add ...\ngnt-instance: error: Unknown hypervisor 'kvm,kernel_path='\n",
      'Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\nParameter \'kernel_path\' is not supported\n',
    ]) {
      expect(refusalNaming(out, { os: 'x', variant: 'no-such-variant' })).toBeUndefined();
      expect(refusalNaming(out, { param: 'filesystem', value: 'bad' })).toBeUndefined();
    }
  });
  it('the variant refusal names the variant', () => {
    expect(refusalNaming(prereq("OS 'x' does not support variant 'no-such-variant'"), { os: 'x', variant: 'no-such-variant' })).toMatch(/does not support variant 'no-such-variant'/);
    expect(refusalNaming(prereq("OS 'x' does not support variant 'other'"), { os: 'x', variant: 'no-such-variant' })).toBeUndefined();
  });
  it("verify's failure passes only when it names the parameter or quotes the value", () => {
    const failed = (out: string) => prereq(`OS validation script failed (exited with exit code 1), output: ${out}`);
    expect(refusalNaming(failed("verify: invalid value 'bad' for parameter filesystem"), { param: 'filesystem', value: 'bad' })).toBeDefined();
    expect(refusalNaming(failed('OSP_FILESYSTEM must be ext4 or xfs'), { param: 'filesystem', value: 'nope' })).toBeDefined();
    expect(refusalNaming(failed('mirror unreachable'), { param: 'filesystem', value: 'bad' })).toBeUndefined();
    expect(refusalNaming(prereq('The following parameters are not supported by the OS x: filesystem'), { param: 'filesystem', value: 'bad' })).toBeDefined();
  });
});

describeSystem("Ganeti's own parser and refusals", { ganeti: true }, () => {
  /** Ganeti 3.0's cli_opts parsing of one option value: -H (ident:key=val) or -O (key=val). */
  function ganetiParses(kind: 'H' | 'O', value: string): unknown {
    const code = `import json, sys\nfrom ganeti import cli_opts\nv = sys.stdin.read()\nprint(json.dumps(cli_opts.check_ident_key_val(None, "-H", v) if "${kind}" == "H" else cli_opts.check_key_val(None, "-O", v)))`;
    const r = runSync([GANETI_PYTHON, '-c', code], { input: value, env: { PATH: '/usr/bin:/bin', PYTHONPATH: ganetiPythonPath('3.0') } });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  }

  it('values with commas, colons, equals signs and backslashes reach Ganeti intact', () => {
    const hv = ['kernel_path=', 'kvm_extra=-accel tcg,thread=single', 'kernel_args=ro root=/dev/vda1 console=ttyS0,115200:x', 'initrd_path=C:\\odd\\,path\\'];
    const args = instanceAddOptions({ ...SHAPE, hvparams: hv }, 'node1');
    expect(ganetiParses('H', args[args.indexOf('-H') + 1])).toEqual(['kvm', Object.fromEntries(hv.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]))]);
    const osp = ['dns-servers=1.1.1.1,8.8.8.8', 'ssh-authorized-keys=ssh-ed25519 AAAA a@b:c', 'x=a=b'];
    expect(ganetiParses('O', osparamOptions(osp)[1])).toEqual({ 'dns-servers': '1.1.1.1,8.8.8.8', 'ssh-authorized-keys': 'ssh-ed25519 AAAA a@b:c', x: 'a=b' });
    // The old syntax: Ganeti reads a hypervisor named "kvm,kernel_path=".
    expect(ganetiParses('H', 'kvm,kernel_path=')).toEqual(['kvm,kernel_path=', {}]);
  });

  it("Ganeti's own refusals of a bad variant and a bad parameter value are recognised", async () => {
    const root = tempDir('gnt-args');
    try {
      expect((await cli(root, ['new', 'refuse', '--template', 'blank', '--yes'])).code).toBe(0);
      const d = path.join(root, 'refuse');
      expect((await cli(root, ['add-param', 'filesystem', 'The filesystem', '--choices', 'ext4,xfs', '--default', 'ext4', '--os-dir', d])).code).toBe(0);
      const variant = validateOs(d, 'refuse+no-such-variant', {});
      const param = validateOs(d, 'refuse+default', { filesystem: 'not-one-of-ext4-xfs' });
      expect([variant.ok, param.ok]).toEqual([false, false]);
      const wrap = (e: string) => `Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\nOS Parameters validation failed on node node1.example.com: ${e}\n`;
      expect(refusalNaming(wrap(variant.error!), { os: 'refuse', variant: 'no-such-variant' })).toBeDefined();
      expect(refusalNaming(wrap(param.error!), { param: 'filesystem', value: 'not-one-of-ext4-xfs' })).toBeDefined();
      // Each refusal is not the other's.
      expect(refusalNaming(wrap(param.error!), { os: 'refuse', variant: 'no-such-variant' })).toBeUndefined();
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
