/**
 * The cluster backend of `ganeti-os test --cluster`: a definition's lifecycle through a running
 * box's real Ganeti commands (src/cluster), each a step of the one lifecycle (lifecycle.ts):
 *
 *   install on every node → (prefill: create once on the host, for caches that download)
 *   → gnt-os diagnose → gnt-os info → a bad parameter value and a bad variant refused by the
 *   master → gnt-instance add → (--firmware uefi|secureboot: the instance's copy of OVMF's
 *   variable store on its node, kvm_extra set with gnt-instance modify) → start (on kvm: ready on
 *   the serial console, and under UEFI the kernel saying so) → gnt-backup export → gnt-instance
 *   grow-disk of disk 0, then (kvm with a boot) a stop and start, after which the root filesystem
 *   must fill the grown disk (read-only, the instance stopped) → gnt-backup import as a new
 *   instance of the export made before the grow (Ganeti runs rename after it) → (debian template: a
 *   restore under the exported name) → gnt-instance rename → reinstall → remove → gnt-cluster
 *   verify. With --burnin, Ganeti's own burnin (burnin.ts) runs before the cleanup, each of its
 *   phases a step.
 *
 * For debian-template definitions the instance disks are read read-only after the steps
 * (identity.ts, issue 16): the copy must have new SSH host keys and an empty machine-id (unless
 * copy-identity=keep is given); the restore, rename and reinstall must keep them.
 *
 * Ganeti's code explains each check: cmdlib/instance_create.py (LUInstanceCreate: variant and
 * OS parameter checks on the master, import), cmdlib/backup.py (export), hv_kvm (serial socket).
 * Instances it created are removed by its own steps, and by close() after a failure or Ctrl-C.
 */
import * as fs from 'node:fs';
import { UserError } from '../errors';
import { MIB } from '../ganeti/instance';
import type { BoxNode, BoxState } from '../cluster/box';
import { INSTANCE_NAMES } from '../cluster/box';
import { PROVIDER } from '../cluster/files';
import { Refused, hvOption, keyValList, refusalNaming } from '../cluster/gnt-args';
import { niceSort } from '../ganeti/diagnose';
import { consoleReady } from '../boot/console';
import { diskFirmware } from '../boot/inspect';
import { FIRMWARE_TEXT, Firmware, GANETI_VARS_DIR, KERNEL_SAYS, OVMF, ganetiKvmFirmware } from '../boot/firmware';
import { diskOnHost, gnt, installDefinition, noNameChecks, renameArgv, instanceNames, instanceStatus, KNOWN_FINDINGS, osLogTail, prefill, startAndWaitForConsole, tail } from '../cluster/gnt';
import type { OsDefinition } from '../definition/model';
import type { GanetiRelease } from '../ganeti/releases';
import { BurninRun, osScriptWarnings } from './burnin';
import { Identity, identityChecks, readIdentity } from './identity';
import { fillsDisk } from './local';
import { Backend, Step, StepContext, StepOutcome, failed, passed, skipped } from './lifecycle';

export interface ClusterBackendOptions {
  box: BoxState;
  /** The Ganeti release the box runs (its command lines differ). */
  release: GanetiRelease;
  /** A definition Ganeti accepts; its name is the OS name. */
  def: OsDefinition;
  /** Default: the first variant (none for a definition without variants.list). */
  variant?: string;
  /** `-O` parameters for add and reinstall, "name=value". */
  osparams: string[];
  /** A value the master must refuse, "name=value"; null: skip; undefined: one outside a declared parameter's choices. */
  badOsparam?: string | null;
  hypervisor: 'kvm' | 'fake';
  /** Extra `-H` parameters for the instance, "name=value". */
  hvparams: string[];
  diskTemplate: 'file' | 'ext';
  /** Disk 0, MiB. */
  diskMib: number;
  /** Memory of the instance, MiB. */
  memoryMib: number;
  /** Wait for readiness on the serial console (kvm only); 'auto': kvm and a debian-template definition. */
  boot: boolean | 'auto';
  /** Seconds to wait for readiness on the console. */
  bootTimeout: number;
  /** The console text that means ready (default: a login prompt). */
  ready?: RegExp;
  /** Run create once on the host first, so caches that need a download are filled ('auto': debian template). */
  prefill: boolean | 'auto';
  /** Run Ganeti's burnin with the definition after the lifecycle (burnin.ts; file disks only). */
  burnin?: boolean;
  /** Start the instance under UEFI (OVMF through kvm_extra; kvm with a boot only); undefined: BIOS, Ganeti's default. */
  firmware?: Exclude<Firmware, 'bios'>;
  /** MiB gnt-instance grow-disk adds to disk 0 (default: a quarter of it, rounded up to 4 MiB). */
  growMib?: number;
}

/** The root may fill the grown disk after the next boot: how long Ganeti waits for a clean shutdown (ACPI) before it kills the guest. */
const SHUTDOWN_TIMEOUT = 180;

/**
 * The options every `gnt-instance add` of the lifecycle gives (disk, hypervisor and its
 * parameters in Ganeti's `-H hypervisor:key=value,...` syntax, memory, the master as node).
 */
export function instanceAddOptions(o: Pick<ClusterBackendOptions, 'diskTemplate' | 'diskMib' | 'hypervisor' | 'hvparams' | 'memoryMib'> & { release?: GanetiRelease }, master: string): string[] {
  const disk = `0:size=${o.diskMib}M${o.diskTemplate === 'ext' ? `,provider=${PROVIDER}` : ''}`;
  return ['-t', o.diskTemplate, '--disk', disk, '-H', hvOption(o.hypervisor, o.hvparams), '-B', `minmem=${o.memoryMib}M,maxmem=${o.memoryMib}M`, ...noNameChecks(o.release ?? '3.0'), '-n', master];
}

/** `-O key=value,...` for the OS parameters (values escaped for Ganeti's list syntax), or nothing. */
export function osparamOptions(osparams: readonly string[]): string[] {
  return osparams.length ? ['-O', keyValList(osparams)] : [];
}

/** Thrown inside a step: fails it with this message. */
class StepFailed extends Error {}

/** What a step ran, attached to its outcome. */
interface Ran {
  command?: string[];
}

export class ClusterBackend implements Backend {
  readonly name = 'cluster';
  private readonly master: BoxNode;
  private readonly os: string;
  readonly variant: string | null;
  /** OS name as Ganeti takes it: OS+VARIANT. */
  readonly osName: string;
  private readonly isDebian: boolean;
  private readonly boot: boolean;
  private readonly doPrefill: boolean;
  private readonly common: string[];
  private readonly osp: string[];
  /** Instances this run added that still exist. */
  private readonly created = new Set<string>();
  /** The instance the next steps act on (the import, once it passed; the renamed one...). */
  private current: string;
  private exported = false;
  private originalIdentity?: Identity;
  /** Ganeti's burnin with this definition (--burnin), on two more free names. */
  private readonly burnin?: BurninRun;
  /** Copies of OVMF's variable store this run made on the master (removed with the instances). */
  private readonly varStores = new Set<string>();
  private readonly growMib: number;

  private constructor(
    private readonly o: ClusterBackendOptions,
    /** Free instance names: the first add, the import, the rename. */
    readonly names: { first: string; imported: string; renamed: string; burnin?: string; burninRenamed?: string },
  ) {
    this.master = o.box.nodes[0];
    this.os = o.def.name;
    this.variant = o.variant ?? (o.def.variants.length ? o.def.variants[0] : null);
    this.osName = this.variant ? `${this.os}+${this.variant}` : this.os;
    this.isDebian = o.def.provenance?.template === 'debian';
    // A firmware asked for is proven only by a boot (the kernel's words on the console): --firmware
    // turns the boot on for any definition, not only the debian template's.
    this.boot = o.boot === 'auto' ? o.hypervisor === 'kvm' && (this.isDebian || !!o.firmware) : o.boot && o.hypervisor === 'kvm';
    this.doPrefill = o.prefill === 'auto' ? this.isDebian : o.prefill;
    this.common = instanceAddOptions(o, this.master.name);
    this.osp = osparamOptions(o.osparams);
    this.current = names.first;
    this.growMib = o.growMib ?? Math.ceil(o.diskMib / 4 / 4) * 4;
    if (o.burnin && names.burnin && names.burninRenamed) {
      this.burnin = new BurninRun({ master: this.master, release: o.release, osName: this.osName, osparams: o.osparams, hypervisor: o.hypervisor, hvparams: o.hvparams, diskMib: o.diskMib, memoryMib: o.memoryMib, instance: names.burnin, renameTo: names.burninRenamed });
    }
  }

  /**
   * A backend for a running box: picks three instance names the cluster does not use (five with
   * burnin: its instance and the name it renames it to). Throws UserError when too few are free.
   */
  static async open(o: ClusterBackendOptions): Promise<ClusterBackend> {
    const existing = new Set(await instanceNames(o.box.nodes[0]));
    const free = INSTANCE_NAMES.map((i) => i.name).filter((n) => !existing.has(n));
    if (free.length < (o.burnin ? 5 : 3)) throw new UserError('the box has no free instance names left: remove some instances first (ganeti-os cluster exec -- gnt-instance list)');
    return new ClusterBackend(o, { first: free[0], imported: free[1], renamed: free[2], ...(o.burnin ? { burnin: free[3], burninRenamed: free[4] } : {}) });
  }

  steps(): Step[] {
    const step = (name: string, title: string, needs: string[], fn: (sc: StepContext, ran: Ran) => Promise<StepOutcome>): Step => ({
      name,
      title,
      needs,
      run: async (sc) => {
        const ran: Ran = {};
        try {
          return { ...(await fn(sc, ran)), ...ran };
        } catch (err) {
          return failed(err instanceof Error ? err.message : String(err), ran);
        }
      },
    });
    const ready = this.doPrefill ? ['install', 'prefill'] : ['install'];
    const steps: Step[] = [
      step('install', 'install on every node', [], async () => {
        installDefinition(this.o.box, this.o.def.osDir, this.os);
        return passed(`${this.o.box.nodes.length} node(s): /srv/ganeti/os/${this.os}`);
      }),
    ];
    if (this.doPrefill) {
      steps.push(
        step('prefill', 'prefill (create on the host)', ['install'], async (sc, ran) => {
          sc.phase('running create on the host, /var overlaid into the box');
          ran.command = prefill(this.o.box, { osDir: this.o.def.osDir, variant: this.variant, instance: this.names.first, hypervisor: this.o.hypervisor, hvparams: this.o.hvparams, osparams: this.o.osparams, diskMib: this.o.diskMib });
          return passed("the caches create filled on the host are in the master's /var");
        }),
      );
    }
    steps.push(
      step('diagnose', 'gnt-os diagnose', ready, (sc, ran) => this.diagnose(sc, ran)),
      step('os-info', 'gnt-os info', ['diagnose'], (sc, ran) => this.osInfo(sc, ran)),
      step('bad-osparam', 'bad parameter refused', ['diagnose'], (sc, ran) => this.badOsparam(sc, ran)),
      step('bad-variant', 'bad variant refused', ['diagnose'], (sc, ran) => this.refused(sc, ran, `${this.os}+no-such-variant`, [], 'an unknown variant', { os: this.os, variant: 'no-such-variant' })),
      step('add', 'gnt-instance add', ['diagnose'], (sc, ran) => this.add(sc, ran)),
    );
    const fw = this.o.firmware;
    if (fw) steps.push(step('firmware', `${FIRMWARE_TEXT[fw]}: variable store, kvm_extra`, ['add'], (sc, ran) => this.firmware(sc, ran, fw)));
    steps.push(
      step('start', this.boot ? `gnt-instance start (console${fw ? `, ${FIRMWARE_TEXT[fw]}` : ''})` : 'gnt-instance start', fw ? ['add', 'firmware'] : ['add'], (sc, ran) => this.start(sc, ran)),
      step('export', 'gnt-backup export', ['add'], async (sc, ran) => {
        await this.must(sc, ran, ['gnt-backup', 'export', '-n', this.master.name, this.names.first]);
        this.exported = true;
        return passed(`${this.names.first} to /var/lib/ganeti/export/${this.names.first}`);
      }),
      // After the export: the import and the restore take the disk as it was (the export's size).
      step('grow', this.boot ? 'gnt-instance grow-disk, restart' : 'gnt-instance grow-disk', this.boot ? ['start'] : ['add'], (sc, ran) => this.grow(sc, ran)),
      step('import', 'gnt-backup import (runs rename)', ['export'], (sc, ran) => this.importCopy(sc, ran)),
    );
    if (this.isDebian) steps.push(step('restore', 'gnt-backup import (restore)', ['export'], (sc, ran) => this.restore(sc, ran)));
    steps.push(
      step('rename', 'gnt-instance rename', ['add'], (sc, ran) => this.rename(sc, ran)),
      step('reinstall', 'gnt-instance reinstall', ['add'], (sc, ran) => this.reinstall(sc, ran)),
      step('remove', 'gnt-instance remove', ['add'], async (sc, ran) => {
        const removed = [...this.created];
        for (const name of removed) {
          await this.must(sc, ran, ['gnt-instance', 'remove', '-f', '--shutdown-timeout', '0', name]);
          this.created.delete(name);
        }
        const hadExport = this.exported;
        await gnt(this.master, ['gnt-backup', 'remove', this.names.first], { signal: sc.signal });
        this.exported = false;
        const stores = await this.removeVarStores(sc.signal);
        return passed(`${removed.join(', ')}${hadExport ? ' and the export' : ''}${stores ? ` and ${stores}` : ''}`);
      }),
    );
    if (this.burnin) steps.push(...this.burnin.steps(['diagnose']));
    steps.push(
      step('cleanup', 'cleanup (instances left behind)', [], async (sc, ran) => {
        await this.adoptBurnin();
        if (!this.created.size) return skipped('no instance left behind');
        const left = [...this.created];
        await this.removeLeftovers(sc, ran);
        return passed(`removed ${left.join(', ')}`);
      }),
      step('cluster-verify', 'gnt-cluster verify', [], async (sc, ran) => {
        const argv = ['gnt-cluster', 'verify', '--error-codes', ...Object.keys(KNOWN_FINDINGS).flatMap((k) => ['-I', k])];
        const r = await this.must(sc, ran, argv);
        const findings = r.stdout.split('\n').filter((l) => /- (ERROR|WARNING):/.test(l) && !Object.keys(KNOWN_FINDINGS).some((k) => l.includes(`:${k}:`)));
        if (findings.length) return failed(findings.join('\n'), ran);
        return passed(`clean; known findings ignored: ${Object.entries(KNOWN_FINDINGS).map(([k, v]) => `${k} (${v})`).join('; ')}`);
      }),
    );
    return steps;
  }

  /** Run a gnt-* command on the master, its output lines as the step's phase; throws StepFailed on a non-zero exit. */
  private async must(sc: StepContext, ran: Ran, argv: string[], extra = ''): Promise<Awaited<ReturnType<typeof gnt>>> {
    ran.command = argv;
    const r = await gnt(this.master, argv, { signal: sc.signal, onLine: (l) => sc.phase(l) });
    if (r.status !== 0) throw new StepFailed(`exit ${r.status}: ${tail(r.stderr + r.stdout)}${extra}`);
    return r;
  }

  private async diagnose(sc: StepContext, ran: Ran): Promise<StepOutcome> {
    const out = (await this.must(sc, ran, ['gnt-os', 'diagnose'])).stdout;
    const block = out.split(/\n(?=OS: )/).find((b) => b.startsWith(`OS: ${this.os} `));
    if (!block) throw new StepFailed(`${this.os} is not listed:\n${tail(out)}`);
    if (!block.startsWith(`OS: ${this.os} [global status: valid]`)) throw new StepFailed(tail(block));
    const listed = /Variants: \[([^\]]*)\]/.exec(block)?.[1].split(',').map((v) => v.trim()).filter(Boolean) ?? [];
    // Ganeti's diagnose lists the variants NiceSorted (the OS query), not in variants.list's order.
    const want = niceSort(this.o.def.variants);
    if (listed.join(',') !== want.join(',')) throw new StepFailed(`variants ${listed.join(', ')}; expected ${want.join(', ')}`);
    return passed(`valid${listed.length ? `, variants ${listed.join(', ')}` : ''}`);
  }

  private async osInfo(sc: StepContext, ran: Ran): Promise<StepOutcome> {
    const out = (await this.must(sc, ran, ['gnt-os', 'info', this.os])).stdout;
    if (!/valid: True/.test(out)) throw new StepFailed(`not valid:\n${tail(out)}`);
    for (const v of this.o.def.variants) if (!new RegExp(`\\b${escapeRe(v)}\\b`).test(out)) throw new StepFailed(`variant ${v} missing:\n${tail(out)}`);
    for (const p of this.o.def.parameters) if (!out.includes(p.name)) throw new StepFailed(`parameter ${p.name} missing:\n${tail(out)}`);
    return passed(`valid, ${this.o.def.parameters.length} parameter(s)`);
  }

  private async badOsparam(sc: StepContext, ran: Ran): Promise<StepOutcome> {
    const bad = this.o.badOsparam === undefined ? badValueFromChoices(this.o.def) : this.o.badOsparam;
    if (!bad) return skipped('no parameter with declared choices (give one with --bad-osparam name=value)');
    const eq = bad.indexOf('=');
    const [param, value] = eq < 0 ? [bad, ''] : [bad.slice(0, eq), bad.slice(eq + 1)];
    return this.refused(sc, ran, this.osName, ['-O', keyValList([bad])], bad, { param, value });
  }

  /**
   * gnt-instance add with something the master must refuse: passes when no instance stays and
   * Ganeti's refusal names it (refusalNaming); a failure for another reason (a protocol error,
   * a command Ganeti cannot parse) fails the step.
   */
  private async refused(sc: StepContext, ran: Ran, osName: string, extra: string[], what: string, expect: Refused): Promise<StepOutcome> {
    const first = this.names.first;
    ran.command = ['gnt-instance', 'add', '-o', osName, ...this.common, '--no-start', ...extra, first];
    const r = await gnt(this.master, ran.command, { signal: sc.signal, onLine: (l) => sc.phase(l) });
    if ((await instanceNames(this.master)).includes(first)) {
      this.created.add(first);
      return failed(`the master accepted ${what}: the instance was added`);
    }
    if (r.status === 0) return failed(`gnt-instance add with ${what} succeeded`);
    const said = r.stderr + r.stdout;
    const named = refusalNaming(said, expect);
    if (!named) return failed(`gnt-instance add failed, but not by refusing ${what}: ${tail(said, 3).replace(/\s*\n\s*/g, ' ')}`);
    if ('param' in expect && named.includes('OS validation script failed')) {
      // The definition's verify refused it: that proves something only when verify accepts the
      // definition's own values. The same add with them, as a dry run (Ganeti runs verify in its
      // checks and stops before creating anything).
      const good = ['gnt-instance', 'add', '-o', osName, ...this.common, ...this.osp, '--no-start', '--dry-run', first];
      const g = await gnt(this.master, good, { signal: sc.signal, onLine: (l) => sc.phase(l) });
      if ((await instanceNames(this.master)).includes(first)) this.created.add(first);
      if (g.status !== 0) {
        return failed(`cannot tell whether ${what} was refused for itself: the same add with the definition's own values fails too (${good.join(' ')}: ${tail(g.stderr + g.stdout, 3).replace(/\s*\n\s*/g, ' ')})`);
      }
      return passed(`${named} (with the definition's own values the same add passes Ganeti's checks: --dry-run)`);
    }
    return passed(named);
  }

  private async add(sc: StepContext, ran: Ran): Promise<StepOutcome> {
    const first = this.names.first;
    ran.command = ['gnt-instance', 'add', '-o', this.osName, ...this.common, ...this.osp, '--no-start', first];
    const r = await gnt(this.master, ran.command, { signal: sc.signal, onLine: (l) => sc.phase(l) });
    if ((await instanceNames(this.master)).includes(first)) this.created.add(first);
    if (r.status !== 0) {
      const state = this.created.has(first) ? `; ${first} stays in the configuration (${await instanceStatus(this.master, first)})` : '';
      return failed(`exit ${r.status}${state}: ${tail(r.stderr + r.stdout)}${osLogTail(this.o.box, 'add', this.osName, first)}`);
    }
    return passed(`${first} (${this.osName}, ${this.o.hypervisor}, ${this.o.diskTemplate} disk of ${this.o.diskMib} MiB)`);
  }

  /**
   * Disk 0 made to boot under the firmware (read-only: its EFI system partition and boot loader),
   * a copy of OVMF's variable store for the instance on its node (GANETI_VARS_DIR, as DEBIAN.md
   * tells admins; OVMF writes to it), and the flash drives appended to the instance's kvm_extra
   * (what it has now, the cluster's -accel tcg included) with gnt-instance modify: the instance
   * was added with --no-start, so its first start is under UEFI.
   */
  private async firmware(sc: StepContext, ran: Ran, fw: Exclude<Firmware, 'bios'>): Promise<StepOutcome> {
    const first = this.names.first;
    sc.phase('reading disk 0 (read-only)');
    const made = diskFirmware(await diskOnHost(this.o.box, first));
    if (!made.firmwares.includes(fw)) throw new StepFailed(`disk 0 of ${first} is not made to boot under ${FIRMWARE_TEXT[fw]}: ${made.why[fw]}`);
    const vars = `${GANETI_VARS_DIR}/${first}.vars.fd`;
    const { code, vars: template } = OVMF[fw];
    sc.phase(`copying ${template} to ${vars} on ${this.master.name}`);
    ran.command = ['sh', '-c', `cp ${template} ${vars}`];
    // Inside the node: its OVMF (the box's /usr is the host's, or its node root's), its /var/lib/ganeti.
    const copy = await gnt(this.master, ['sh', '-c', 'for f in "$1" "$2"; do [ -r "$f" ] || { echo "$f is not on this node (apt-get install ovmf)"; exit 3; }; done; mkdir -p "$3" && cp "$2" "$4"', 'sh', code, template, GANETI_VARS_DIR, vars], { signal: sc.signal });
    if (copy.status !== 0) throw new StepFailed(`cannot copy the UEFI variable store for ${first} on ${this.master.name}: ${tail(copy.stdout + copy.stderr, 3) || `exit ${copy.status}`}`);
    this.varStores.add(vars);
    const now = await gnt(this.master, ['gnt-instance', 'list', '--no-headers', '-o', 'hv/kvm_extra', first], { signal: sc.signal });
    if (now.status !== 0) throw new StepFailed(`gnt-instance list -o hv/kvm_extra: exit ${now.status}: ${tail(now.stderr + now.stdout)}`);
    const current = now.stdout.trim() === '-' ? '' : now.stdout.trim();
    const { kvmExtra, hvparams } = ganetiKvmFirmware(fw, vars);
    const extra = [...current.split(' ').filter(Boolean), ...kvmExtra].join(' ');
    await this.must(sc, ran, ['gnt-instance', 'modify', '-H', keyValList([`kvm_extra=${extra}`, ...hvparams]), first]);
    return passed(`disk 0 boots under ${made.text}; ${vars} on ${this.master.name}; kvm_extra=${extra}${hvparams.length ? `, ${hvparams.join(', ')}` : ''}`);
  }

  /** Start with the console read until ready (and under UEFI, the kernel saying so). Throws StepFailed. */
  private async bootOnConsole(sc: StepContext, ran: Ran, name: string): Promise<string> {
    ran.command = ['gnt-instance', 'start', name];
    const fw = this.o.firmware;
    const r = await startAndWaitForConsole(this.o.box, name, { timeoutSeconds: this.o.bootTimeout, ready: (text) => consoleReady(text, this.o.ready), signal: sc.signal, onConsole: (l) => sc.phase(`console: ${l}`), ...(fw ? { evidence: KERNEL_SAYS[fw] } : {}) });
    if (fw && !r.evidence) {
      throw new StepFailed(`ready after ${r.seconds.toFixed(1)} s (${r.line}), but the kernel never said '${fw === 'uefi' ? 'efi: EFI v…' : 'secureboot: Secure boot enabled'}' on the console: it did not boot under ${FIRMWARE_TEXT[fw]}`);
    }
    return `ready after ${r.seconds.toFixed(1)} s: ${r.line}${fw ? ` (${FIRMWARE_TEXT[fw]}: '${r.evidence}')` : ''}`;
  }

  /** A booted guest shut down cleanly (ACPI; Ganeti kills it after the timeout): whether it went by itself, and in how many seconds. */
  private async shutdown(sc: StepContext, name: string): Promise<{ clean: boolean; seconds: number }> {
    sc.phase('gnt-instance shutdown');
    const t0 = Date.now();
    const stop = await gnt(this.master, ['gnt-instance', 'shutdown', '--timeout', this.boot ? String(SHUTDOWN_TIMEOUT) : '0', name], { signal: sc.signal });
    if (stop.status !== 0) throw new StepFailed(`gnt-instance shutdown: exit ${stop.status}: ${tail(stop.stderr + stop.stdout)}`);
    const seconds = (Date.now() - t0) / 1000;
    return { clean: seconds < SHUTDOWN_TIMEOUT - 5, seconds };
  }

  /** Stop a guest at once after a failed step (the step's own failure stays the one reported). */
  private async stopNow(name: string): Promise<void> {
    await gnt(this.master, ['gnt-instance', 'shutdown', '--timeout', '0', name]);
  }

  private async start(sc: StepContext, ran: Ran): Promise<StepOutcome> {
    const first = this.names.first;
    let detail: string;
    if (this.boot) {
      try {
        detail = await this.bootOnConsole(sc, ran, first);
      } catch (err) {
        await this.stopNow(first);
        throw err;
      }
    } else {
      await this.must(sc, ran, ['gnt-instance', 'start', first]);
      const status = await instanceStatus(this.master, first);
      if (!/running/.test(status)) throw new StepFailed(`status after start: ${status}`);
      detail = `${first} ${status}`;
    }
    // A booted guest is shut down cleanly (ACPI; Ganeti kills it after the timeout), so export reads a clean filesystem.
    await this.shutdown(sc, first);
    return passed(`${detail}; shut down`);
  }

  /**
   * gnt-instance grow-disk of disk 0 (the instance stopped, as the start step left it); then on
   * kvm with a boot a stop and start (a new QEMU sees the new size; the debian template's
   * grow-root service grows the root partition and filesystem early in the boot), a clean
   * shutdown, and a read-only look at the disk: the root filesystem must fill it from where it
   * starts to the end, within 1% (fillsDisk, as `test` checks its grown import). Without a boot
   * only the grow-disk runs, and the step says what the fill check needs.
   */
  private async grow(sc: StepContext, ran: Ran): Promise<StepOutcome> {
    const first = this.names.first;
    // The import compares against the exported disk: read it before a boot changes this one.
    if (this.isDebian && this.boot) await this.original();
    const before = fs.statSync(await diskOnHost(this.o.box, first)).size;
    await this.must(sc, ran, ['gnt-instance', 'grow-disk', first, '0', `${this.growMib}M`]);
    const disk = await diskOnHost(this.o.box, first);
    const after = fs.statSync(disk).size;
    const grew = `disk 0 ${before / MIB} MiB → ${after / MIB} MiB`;
    if (after !== before + this.growMib * MIB) throw new StepFailed(`${grew} after gnt-instance grow-disk ${first} 0 ${this.growMib}M (expected ${before / MIB + this.growMib} MiB)`);
    if (!this.boot) {
      const why = this.o.hypervisor === 'fake' ? 'kvm (the fake hypervisor boots nothing)' : 'a boot (--boot: a login prompt on the console)';
      return passed(`${grew}; whether the root fills it after the next boot is not checked: that needs ${why}`);
    }
    let detail: string;
    let shut: { clean: boolean; seconds: number };
    try {
      detail = await this.bootOnConsole(sc, ran, first);
      shut = await this.shutdown(sc, first);
    } catch (err) {
      await this.stopNow(first);
      throw err;
    }
    sc.phase('reading disk 0 (read-only)');
    const checks = fillsDisk(disk, shut);
    const bad = checks.filter((c) => c.ok === false);
    if (bad.length) return failed(`${grew}, restarted (${detail}): ${bad.map((c) => `${c.name}: ${c.detail}`).join('; ')}`, { checks });
    const fill = checks.find((c) => c.name === 'root fills the disk');
    return passed(`${grew}, restarted: ${detail}; ${fill?.detail ?? ''}`, { checks });
  }

  /** Throws StepFailed when Ganeti warned that an OS script failed (a failing rename is only a warning to it: it exits 0). */
  private scriptWarned(output: string): void {
    const warned = osScriptWarnings(output);
    if (warned.length) throw new StepFailed(`exit 0, but Ganeti warned that an OS script failed: ${warned.join('\n')}`);
  }

  /** The exported instance's identity (read once, before anything replaces its disk). */
  private async original(): Promise<Identity> {
    if (!this.originalIdentity) this.originalIdentity = readIdentity(await diskOnHost(this.o.box, this.names.first));
    return this.originalIdentity;
  }

  private async identity(name: string): Promise<Identity> {
    return readIdentity(await diskOnHost(this.o.box, name));
  }

  /** Identity checks as a step's outcome: failed when one of them is false. */
  private judged(detail: string, checks: ReturnType<typeof identityChecks>): StepOutcome {
    const bad = checks.filter((c) => c.ok === false);
    return bad.length ? failed(bad.map((c) => `${c.name}: ${c.detail}`).join('; '), { checks }) : passed(detail, { checks });
  }

  private async importCopy(sc: StepContext, ran: Ran): Promise<StepOutcome> {
    const { first, imported } = this.names;
    const before = this.isDebian ? await this.original() : undefined;
    ran.command = ['gnt-backup', 'import', ...this.common, '--src-node', this.master.name, '--src-dir', `/var/lib/ganeti/export/${first}`, '--net', '0:mac=generate', imported];
    const r = await gnt(this.master, ran.command, { signal: sc.signal, onLine: (l) => sc.phase(l) });
    if ((await instanceNames(this.master)).includes(imported)) this.created.add(imported);
    if (r.status !== 0) return failed(`exit ${r.status}: ${tail(r.stderr + r.stdout)}${osLogTail(this.o.box, 'import', this.osName, imported)}`);
    this.current = imported;
    this.scriptWarned(r.stdout + r.stderr);
    const detail = `${imported} from ${first}'s export`;
    if (!before) return passed(detail);
    sc.phase('reading the disks (read-only)');
    const keep = this.o.osparams.includes('copy-identity=keep');
    const checks = identityChecks(before, await this.identity(imported), keep ? 'kept' : 'new', `imported as ${imported} from ${first}${keep ? ' with copy-identity=keep' : ''}`);
    return this.judged(`${detail}: ${keep ? 'identity kept (copy-identity=keep)' : 'a new machine (new SSH host keys, empty machine-id)'}`, checks);
  }

  /** A restore: the exported instance removed, then imported under its own name (rename with equal names): the same machine. */
  private async restore(sc: StepContext, ran: Ran): Promise<StepOutcome> {
    const first = this.names.first;
    const before = await this.original();
    if (this.created.has(first)) {
      await this.must(sc, ran, ['gnt-instance', 'remove', '-f', '--shutdown-timeout', '0', first]);
      this.created.delete(first);
    }
    ran.command = ['gnt-backup', 'import', ...this.common, '--src-node', this.master.name, '--src-dir', `/var/lib/ganeti/export/${first}`, first];
    const r = await gnt(this.master, ran.command, { signal: sc.signal, onLine: (l) => sc.phase(l) });
    if ((await instanceNames(this.master)).includes(first)) this.created.add(first);
    if (r.status !== 0) return failed(`exit ${r.status}: ${tail(r.stderr + r.stdout)}${osLogTail(this.o.box, 'import', this.osName, first)}`);
    this.scriptWarned(r.stdout + r.stderr);
    // Rename and reinstall go on with the restored instance: it has the identity a booted original has (a machine-id).
    this.current = first;
    sc.phase('reading the disk (read-only)');
    const checks = identityChecks(before, await this.identity(first), 'kept', `restored as ${first}`);
    return this.judged(`${first} removed and restored from its export: the same machine`, checks);
  }

  private async rename(sc: StepContext, ran: Ran): Promise<StepOutcome> {
    const from = this.current;
    const to = this.names.renamed;
    const before = this.isDebian ? await this.identity(from) : undefined;
    const r = await this.must(sc, ran, renameArgv(this.o.release, from, to));
    this.created.delete(from);
    this.created.add(to);
    this.current = to;
    this.scriptWarned(r.stdout + r.stderr);
    if (!before) return passed(`${from} → ${to}`);
    sc.phase('reading the disk (read-only)');
    return this.judged(`${from} → ${to}: the same machine`, identityChecks(before, await this.identity(to), 'kept', `renamed ${from} → ${to}`));
  }

  private async reinstall(sc: StepContext, ran: Ran): Promise<StepOutcome> {
    const name = this.current;
    const before = this.isDebian ? await this.identity(name) : undefined;
    await this.must(sc, ran, ['gnt-instance', 'reinstall', '-f', ...this.osp, name], osLogTail(this.o.box, 'add', this.osName, name));
    if (!before) return passed(name);
    sc.phase('reading the disk (read-only)');
    return this.judged(`${name}: the same machine`, identityChecks(before, await this.identity(name), 'kept', `reinstalled ${name}`));
  }

  private async removeLeftovers(sc: StepContext | undefined, ran: Ran): Promise<void> {
    for (const name of [...this.created]) {
      const argv = ['gnt-instance', 'remove', '-f', '--shutdown-timeout', '0', name];
      ran.command = argv;
      const r = await gnt(this.master, argv, { signal: sc?.signal });
      if (r.status !== 0) throw new StepFailed(`gnt-instance remove ${name}: exit ${r.status}: ${tail(r.stderr + r.stdout)}`);
      this.created.delete(name);
    }
    if (this.exported) await gnt(this.master, ['gnt-backup', 'remove', this.names.first], { signal: sc?.signal });
    this.exported = false;
  }

  /** Remove the copies of the variable store this run made (after their instances); what was removed, for the report. Never throws. */
  private async removeVarStores(signal?: AbortSignal): Promise<string> {
    if (!this.varStores.size) return '';
    const files = [...this.varStores];
    const r = await gnt(this.master, ['rm', '-f', '--', ...files], { signal });
    if (r.status !== 0) return '';
    this.varStores.clear();
    return files.join(', ');
  }

  /** Burnin's instances that are still there (it failed, or was killed) become this run's to remove. */
  private async adoptBurnin(): Promise<void> {
    if (this.burnin) for (const n of await this.burnin.settle()) this.created.add(n);
  }

  /** Remove whatever this run left in the box (after Ctrl-C the steps that would have are skipped). Never throws. */
  async close(): Promise<void> {
    await this.adoptBurnin();
    if (this.created.size || this.exported) {
      try {
        await this.removeLeftovers(undefined, {});
      } catch {
        // Reported by the cleanup step when the run got there; the box's down removes everything anyway.
      }
    }
    // Only once their instances are gone (a running QEMU holds its store open).
    if (!this.created.size) await this.removeVarStores();
  }
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A "name=value" the master must refuse: outside the choices of the first parameter that declares some. */
function badValueFromChoices(def: OsDefinition): string | null {
  const p = (def.provenance?.answers.parameters ?? []).find((x) => Array.isArray(x.choices) && x.choices.length);
  return p ? `${p.name}=not-one-of-${(p.choices as string[]).join('-')}` : null;
}
