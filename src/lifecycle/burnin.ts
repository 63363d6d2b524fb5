/**
 * Ganeti's own stress tool, burnin (`/usr/lib/ganeti/tools/burnin`, tools/burnin.py), run on the
 * box's master by `test --cluster --burnin` with the definition, its phases reported as steps of
 * the same lifecycle (verdict table, --json).
 *
 * Burnin (BurninCluster) logs each phase at indent 0 ("- Creating instances"), the instance and
 * what it does at indents 1 and 2, and with -v every job's feedback at indent 3. On the box it
 * runs on the master only (`-n`: one node, so the file disk template, and no move, failover or
 * migration), with `-t file` (burnin gives disks no ExtStorage provider: the ext template fails
 * its create with "Missing provider for template 'ext'"), the test's disk size, memory (minmem =
 * maxmem: no runtime-memory phase), one VCPU, the hypervisor and its -H parameters, the OS
 * parameters, one instance and one free name for the rename to a new name and back. Its phases
 * there: create (and start), stop/start, grow disks, reinstall (twice: without and with the OS),
 * reboot (hard, full, soft), rename to the same name, confd queries, NIC add/change/remove,
 * disk activation, disk add/detach and attach/remove, rename to a new name and back, remove.
 * Export/import (not for file disks) is the lifecycle's own.
 *
 * The fake hypervisor has no hotplug: burnin then detaches and removes a disk of a running
 * instance, which Ganeti refuses ("can't remove volume from a running instance without using
 * hotplug"), so on fake burnin runs with --no-add-disks and the two disk phases are reported as
 * skipped, saying so. Its NIC phase runs there: Ganeti changes the NICs in the configuration
 * (they take effect at the next start), no hotplug needed.
 *
 * stdout and stderr are one stream (`2>&1` on the node), so the traceback of a failure follows
 * the phase it ended. Ctrl-C kills burnin; its job may still run in the master daemon, so
 * settle() cancels the queued jobs and waits for the running ones before the instances are
 * removed.
 */
import type { BoxNode } from '../cluster/box';
import { hvOption, keyValList } from '../cluster/gnt-args';
import { gnt, instanceNames, noNameChecks, tail } from '../cluster/gnt';
import type { GanetiRelease } from '../ganeti/releases';
import { failed, passed, skipped, Step, StepContext, StepOutcome } from './lifecycle';

/** Where Debian's `ganeti` package installs burnin, in 3.0 and 3.1 alike. */
export const BURNIN = '/usr/lib/ganeti/tools/burnin';

/**
 * Burnin's phases as BurninCluster logs them (tools/burnin.py, the Log calls at indent 0, the
 * same in 3.0 and 3.1), in its order, each with the name of its step.
 */
export const BURNIN_PHASES: readonly { name: string; title: string }[] = [
  { name: 'burnin-create', title: 'Creating instances' },
  { name: 'burnin-stop-start', title: 'Stopping and starting instances' },
  { name: 'burnin-runtime-memory', title: 'Setting instance runtime memory' },
  { name: 'burnin-replace-disks', title: 'Replacing disks on the same nodes' },
  { name: 'burnin-change-secondary', title: 'Changing the secondary node' },
  { name: 'burnin-grow', title: 'Growing disks' },
  { name: 'burnin-failover', title: 'Failing over instances' },
  { name: 'burnin-migrate', title: 'Migrating instances' },
  { name: 'burnin-move', title: 'Moving instances' },
  { name: 'burnin-export-import', title: 'Exporting and re-importing instances' },
  { name: 'burnin-reinstall', title: 'Reinstalling instances' },
  { name: 'burnin-reboot', title: 'Rebooting instances' },
  { name: 'burnin-rename-same', title: 'Renaming the instances to their own name' },
  { name: 'burnin-confd', title: 'Checking confd results' },
  { name: 'burnin-nics', title: 'Adding and removing NICs' },
  { name: 'burnin-activate-disks', title: 'Activating/deactivating disks' },
  { name: 'burnin-add-disks', title: 'Adding and detaching disks' },
  { name: 'burnin-remove-disks', title: 'Attaching and removing disks' },
  { name: 'burnin-rename', title: 'Renaming instances' },
  { name: 'burnin-remove', title: 'Removing instances' },
];

/** Why the disk phases are left out on the fake hypervisor (the step's detail). */
export const NO_HOTPLUG = 'not on fake: no hotplug (burnin detaches and removes a disk of a running instance, which Ganeti refuses without hotplug)';

export interface BurninOptions {
  master: BoxNode;
  release: GanetiRelease;
  /** OS+VARIANT, as `-o` takes it. */
  osName: string;
  /** OS parameters, "name=value". */
  osparams: readonly string[];
  hypervisor: 'kvm' | 'fake';
  /** Hypervisor parameters, "name=value". */
  hvparams: readonly string[];
  diskMib: number;
  memoryMib: number;
  /** The instance burnin creates, and the free name it renames it to and back from. */
  instance: string;
  renameTo: string;
}

/** A phase the plan expects, and why it is left out (then it is a skipped step). */
export interface PlannedPhase {
  name: string;
  title: string;
  leftOut?: string;
}

const phase = (name: string, leftOut?: string): PlannedPhase => {
  const p = BURNIN_PHASES.find((x) => x.name === name);
  if (!p) throw new Error(`no burnin phase ${name}`);
  return leftOut ? { ...p, leftOut } : { ...p };
};

/**
 * Burnin's command line for the box (run on the master) and the phases it will log, in order:
 * see the module's comment for each choice. The name and IP checks are off as for every
 * instance of the box (3.0: `--no-name-check --no-ip-check`; 3.1 checks only when asked and has
 * no `--no-` options in burnin).
 */
export function burninPlan(o: BurninOptions): { argv: string[]; phases: PlannedPhase[] } {
  const fake = o.hypervisor === 'fake';
  const argv = [
    BURNIN,
    '-o', o.osName,
    '-t', 'file',
    '-n', o.master.name,
    '--disk-size', `${o.diskMib}M`,
    '-H', hvOption(o.hypervisor, o.hvparams),
    '--mem-size', `${o.memoryMib}M`,
    '--vcpu-count', '1',
    ...noNameChecks(o.release),
    ...(o.osparams.length ? ['-O', keyValList(o.osparams)] : []),
    ...(fake ? ['--no-add-disks'] : []),
    '--rename', o.renameTo,
    '-v',
    o.instance,
  ];
  const phases = [
    phase('burnin-create'),
    phase('burnin-stop-start'),
    phase('burnin-grow'),
    phase('burnin-reinstall'),
    phase('burnin-reboot'),
    phase('burnin-rename-same'),
    phase('burnin-confd'),
    phase('burnin-nics'),
    phase('burnin-activate-disks'),
    phase('burnin-add-disks', fake ? NO_HOTPLUG : undefined),
    phase('burnin-remove-disks', fake ? NO_HOTPLUG : undefined),
    phase('burnin-rename'),
    phase('burnin-remove'),
  ];
  return { argv, phases };
}

/** One phase burnin logged, with what it said in it. */
export interface SeenPhase {
  title: string;
  /** Its lines (trimmed, non-empty): instances, actions, job feedback. */
  lines: string[];
  /** Burnin's own remarks in it ("Skipping migration (...)", retries). */
  notes: string[];
  /** Burnin gave up in this phase. */
  failed: boolean;
  /**
   * Ganeti's warnings that an OS script failed, with the script's last lines: a failing rename
   * script is only a warning to Ganeti (LUInstanceRename: "Could not run OS rename script ...
   * (but the instance has been renamed in Ganeti)"; after an import: "Failed to run rename
   * script"), so burnin goes on; for a definition it is a failure.
   */
  scriptWarnings: string[];
}

/** What one run of burnin came to. */
export interface BurninResult {
  phases: SeenPhase[];
  /** The phase it failed in (undefined: it did not fail, or before its first phase). */
  failedIn?: string;
  /** Burnin's exit status (-1: killed); undefined while it runs. */
  status?: number;
  /** What it said about the failure: the exception (the end of its traceback) or its last words. */
  error?: string;
  /** Lines before the first phase. */
  preamble: string[];
  /** "error detected during instance remove: ..." (its cleanup after a failure). */
  removeError?: string;
}

const FEEDBACK = /^\w{3} \w{3} [ \d]?\d \d\d:\d\d:\d\d \d{4} /;
const SCRIPT_WARNING = /^- WARNING: (Could not run OS \w+ script|Failed to run \w+ script)/;
const FAILED = /^- (Non-idempotent \S+ failed, aborting|Idempotent \S+ repeated failure, aborting|Jobs failed: .*|Post process call for job .* failed: .*)$/;

/**
 * Reads burnin's output line by line (as it comes, or a captured run): its phases, where it
 * failed and why. Lines are trimmed; empty ones are ignored.
 */
export class BurninParser {
  private readonly r: BurninResult = { phases: [], preamble: [] };
  /** In the opcode buffer burnin prints after a failure (a copy of the feedback already seen). */
  private inBuffer = false;
  private traceback: string[] | undefined;
  /** The OS-script warning whose message (the script's last lines) the next lines continue. */
  private warning: { phase: SeenPhase; at: number } | undefined;

  /** The phase burnin is in (its title), if any. */
  get current(): string | undefined {
    return this.r.phases[this.r.phases.length - 1]?.title;
  }

  /** The result so far. */
  get result(): BurninResult {
    return this.r;
  }

  /** Take one line of output. */
  push(raw: string): void {
    const line = raw.trim();
    if (!line) return;
    if (this.traceback) {
      this.traceback.push(line);
      return;
    }
    if (line === 'Traceback (most recent call last):') {
      this.traceback = [];
      return;
    }
    const header = line.startsWith('- ') ? BURNIN_PHASES.find((p) => line === `- ${p.title}`) : undefined;
    if (header) {
      this.inBuffer = false;
      this.r.phases.push({ title: header.title, lines: [], notes: [], failed: false, scriptWarnings: [] });
      this.warning = undefined;
      return;
    }
    if (this.inBuffer) return;
    const cur = this.r.phases[this.r.phases.length - 1];
    if (line === '- Error detected: opcode buffer follows:') {
      this.inBuffer = true;
      this.fail(cur);
      return;
    }
    if (FAILED.test(line)) {
      this.fail(cur);
      if (cur) cur.notes.push(line.slice(2));
      return;
    }
    const note = /^- Note: error detected during instance remove: (.*)$/.exec(line);
    if (note) {
      this.r.removeError = note[1];
      return;
    }
    if (line.startsWith('- ') && cur) {
      cur.notes.push(line.slice(2));
      return;
    }
    if (cur && FEEDBACK.test(line)) {
      this.warning = undefined;
      const said = line.replace(FEEDBACK, '').trim();
      if (SCRIPT_WARNING.test(said)) {
        cur.scriptWarnings.push(said.slice('- WARNING: '.length));
        this.warning = { phase: cur, at: cur.scriptWarnings.length - 1 };
      }
    } else if (this.warning && !line.startsWith('* ')) {
      this.warning.phase.scriptWarnings[this.warning.at] += `\n${line}`;
    }
    (cur ? cur.lines : this.r.preamble).push(line);
  }

  private fail(cur: SeenPhase | undefined): void {
    if (this.r.failedIn !== undefined || !cur) return;
    cur.failed = true;
    this.r.failedIn = cur.title;
  }

  /** Burnin ended with `status`: the final result. */
  finish(status: number): BurninResult {
    this.r.status = status;
    const tb = this.traceback ?? [];
    // The exception is the traceback's last entry: "ganeti.errors.OpExecError: ..." (it may span lines).
    const at = findLastIndex(tb, (l) => /^[A-Za-z_][\w.]*(Error|Exception|Failure|Down|Interrupt)\b/.test(l));
    if (at >= 0) this.r.error = tb.slice(at).join('\n');
    if (status !== 0) {
      const cur = this.r.phases[this.r.phases.length - 1];
      if (this.r.failedIn === undefined && cur && cur.title !== 'Removing instances') this.fail(cur);
      // Without a traceback (burnin's Err: "OS 'x' not found", ...): its last words.
      if (!this.r.error) this.r.error = (tb.length ? tb : cur ? cur.lines : this.r.preamble).slice(-3).join('\n') || `exit ${status}`;
    }
    return this.r;
  }
}

function findLastIndex<T>(a: readonly T[], f: (x: T) => boolean): number {
  for (let i = a.length - 1; i >= 0; i--) if (f(a[i])) return i;
  return -1;
}

/**
 * Ganeti's warnings in a command's output (gnt-instance rename's, gnt-backup import's, burnin's
 * feedback) that an OS script failed, each with the script's last lines that follow it: Ganeti
 * renames anyway and exits 0 (LUInstanceRename, LUInstanceCreate after an import).
 */
export function osScriptWarnings(output: string): string[] {
  const found: string[] = [];
  let open = false;
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    const said = line.replace(FEEDBACK, '').trim();
    if (SCRIPT_WARNING.test(said)) {
      found.push(said.slice('- WARNING: '.length));
      open = true;
    } else if (open && line && !FEEDBACK.test(line) && !line.startsWith('- ') && !line.startsWith('* ')) {
      found[found.length - 1] += `\n${line}`;
    } else open = false;
  }
  return found;
}

/** Parse a whole captured run of burnin (stdout and stderr as one stream) that exited with `status`. */
export function parseBurnin(output: string, status: number): BurninResult {
  const p = new BurninParser();
  for (const l of output.split('\n')) p.push(l);
  return p.finish(status);
}

/** "instance4.example.com: reinstall without passing the OS; reinstall specifying the OS": what a passed phase did. */
export function phaseSummary(p: SeenPhase): string {
  const instances = p.lines.filter((l) => l.startsWith('* instance ')).map((l) => l.slice('* instance '.length));
  const actions = p.lines.filter((l) => !l.startsWith('* instance ') && !FEEDBACK.test(l)).map((l) => l.replace(/^\* /, ''));
  const notes = p.notes.filter((n) => !/^Skipping migration/.test(n));
  // Ganeti's other warnings, once each ("Hotplug is not supported: ..." for the NICs on fake).
  const warnings = [...new Set(p.lines.map((l) => l.replace(FEEDBACK, '').trim()).filter((l) => l.startsWith('- WARNING: ')).map((l) => l.slice('- WARNING: '.length)))];
  const text = [instances.join(', '), actions.join('; ')].filter(Boolean).join(': ');
  return [text || 'done', ...notes, ...warnings.map((w) => `Ganeti warned: ${w}`)].join('; ');
}

/**
 * The outcome of planned phase `index` once burnin is past it (or ended): the phase's own
 * segment is it plus any phase burnin logged that the plan did not expect, up to the next
 * planned one. Failed naming the phase with burnin's error and the phase's last lines; skipped
 * when it was left out, when an earlier phase failed (naming that phase's step) or when burnin
 * did not run it.
 */
export function phaseOutcome(plan: readonly PlannedPhase[], index: number, r: BurninResult): StepOutcome {
  const p = plan[index];
  if (p.leftOut) return skipped(p.leftOut);
  const planned = new Set(plan.filter((x) => !x.leftOut).map((x) => x.title));
  const at = r.phases.findIndex((x) => x.title === p.title);
  const failedStep = (title: string) => BURNIN_PHASES.find((x) => x.title === title)?.name ?? title;
  if (at < 0) {
    if (index === 0 && r.status !== undefined && r.status !== 0 && !r.phases.length) {
      return failed(`burnin exited ${r.status} before ${p.title.toLowerCase()}: ${r.error ?? ''}`, { logTail: r.preamble.slice(-15) });
    }
    if (r.failedIn) return skipped(`needs ${failedStep(r.failedIn)}, which did not pass`);
    if (r.status !== undefined && r.status !== 0) return skipped(`needs burnin, which exited ${r.status}`);
    return skipped('burnin left it out');
  }
  let end = at + 1;
  while (end < r.phases.length && !planned.has(r.phases[end].title)) end++;
  const segment = r.phases.slice(at, end);
  const extra = segment.slice(1).map((x) => x.title);
  const bad = segment.find((x) => x.failed);
  if (bad) {
    return failed(`burnin failed in "${bad.title}": ${r.error ?? 'see its output'}`, { logTail: [...bad.lines, ...bad.notes].slice(-15) });
  }
  const warned = segment.flatMap((x) => x.scriptWarnings.map((w) => ({ title: x.title, w })));
  if (warned.length) {
    return failed(`burnin went on, but in "${warned[0].title}" Ganeti warned that an OS script failed: ${warned.map((x) => x.w).join('\n')}`, { logTail: segment.flatMap((x) => x.lines).slice(-15) });
  }
  if (p.name === 'burnin-remove' && r.removeError) return failed(`burnin could not remove its instances: ${r.removeError}`, { logTail: segment[0].lines.slice(-15) });
  if (p.name === 'burnin-remove' && r.status !== undefined && r.status !== 0 && !r.failedIn) {
    return failed(`burnin exited ${r.status}: ${r.error ?? ''}`, { logTail: segment[0].lines.slice(-15) });
  }
  return passed(`${phaseSummary(segment[0])}${extra.length ? ` (also: ${extra.join(', ')})` : ''}`);
}

/**
 * One run of burnin on the master as lifecycle steps, one per planned phase: the first step
 * starts burnin, each step ends when burnin logs a later planned phase (or ends; after a failure,
 * when it ends, since its exception comes last), so each
 * step's time is its phase's.
 */
export class BurninRun {
  readonly plan: { argv: string[]; phases: PlannedPhase[] };
  private readonly parser = new BurninParser();
  private running?: Promise<void>;
  private finished = false;
  private killed = false;
  private wake: (() => void)[] = [];
  private sc?: StepContext;

  constructor(private readonly o: BurninOptions) {
    this.plan = burninPlan(o);
  }

  /** The command on the master: burnin with its stderr in its stdout. */
  get command(): string[] {
    return ['sh', '-c', 'exec "$@" 2>&1', 'sh', ...this.plan.argv];
  }

  /** Whether burnin was started. */
  get started(): boolean {
    return this.running !== undefined;
  }

  /** The instance names this run may leave behind (burnin's instance under either name). */
  get names(): string[] {
    return [this.o.instance, this.o.renameTo];
  }

  /** The steps, one per planned phase; the first needs `needs`. */
  steps(needs: string[]): Step[] {
    return this.plan.phases.map((p, i) => ({
      name: p.name,
      title: `burnin: ${p.title}`,
      needs: i === 0 ? needs : [],
      run: async (sc: StepContext): Promise<StepOutcome> => {
        if (p.leftOut) return skipped(p.leftOut);
        if (i > 0 && !this.started) return skipped(`needs ${this.plan.phases[0].name}, which did not pass`);
        this.sc = sc;
        if (!this.started) this.start(sc.signal);
        const planned = this.plan.phases.filter((x) => !x.leftOut).map((x) => x.title);
        const after = planned.slice(planned.indexOf(p.title) + 1);
        // After a failure burnin only removes its instances: wait for its end (the exception comes last).
        await this.until(() => this.finished || (this.parser.result.failedIn === undefined && this.parser.result.phases.some((x) => after.includes(x.title))));
        const outcome = phaseOutcome(this.plan.phases, i, this.parser.result);
        return { ...outcome, command: i === 0 || outcome.status === 'failed' ? this.plan.argv : undefined };
      },
    }));
  }

  private start(signal: AbortSignal): void {
    const onAbort = () => {
      this.killed = true;
    };
    signal.addEventListener('abort', onAbort, { once: true });
    this.running = gnt(this.o.master, this.command, {
      signal,
      timeoutSeconds: 4 * 3600,
      onLine: (l) => {
        this.parser.push(l);
        this.sc?.phase(l);
        this.notify();
      },
    }).then((r) => {
      signal.removeEventListener('abort', onAbort);
      this.parser.finish(r.status);
      if (r.status !== 0 && !this.parser.result.error) this.parser.result.error = tail(r.stdout + r.stderr, 3);
      this.finished = true;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = [];
    for (const f of w) f();
  }

  private async until(done: () => boolean): Promise<void> {
    while (!done()) await new Promise<void>((resolve) => this.wake.push(resolve));
  }

  /**
   * After burnin ended (or was killed by Ctrl-C): when killed, cancel the cluster's queued jobs
   * and wait for the running ones (its job goes on in the master daemon); then the names of
   * burnin's instances that still exist. Never throws.
   */
  async settle(): Promise<string[]> {
    if (!this.running) return [];
    await this.running;
    try {
      if (this.killed) await waitForJobs(this.o.master);
      const left = new Set(await instanceNames(this.o.master));
      return this.names.filter((n) => left.has(n));
    } catch {
      return [];
    }
  }
}

/** Cancel the queued jobs of the cluster and wait (up to `seconds`) until none runs. */
async function waitForJobs(master: BoxNode, seconds = 600): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const r = await gnt(master, ['gnt-job', 'list', '--no-headers', '-o', 'id,status']);
    const open = r.stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([id, status]) => id && /^(queued|waiting|running|canceling)$/.test(status ?? ''));
    if (!open.length || Date.now() > deadline) return;
    for (const [id, status] of open) if (status !== 'running') await gnt(master, ['gnt-job', 'cancel', id]);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
