/**
 * The Ganeti releases ganeti-os follows, and which one a command follows on this node.
 *
 * Each release is the one a Debian release ships: 3.0 (bookworm, `ganeti-3.0` 3.0.2) and 3.1
 * (trixie, `ganeti-3.1` 3.1.0~rc2). Their OS-loading code (backend._TryOSFromDisk, OSCoreEnv,
 * OSEnvironment, ValidateOS) is the same; what differs for an OS definition are the hypervisor
 * defaults an instance gets (kvm: `disk_discard`, `vhost_net`) and, on a cluster, the
 * hypervisor and command-line behaviour.
 */
import * as fs from 'node:fs';
import { UsageError } from '../errors';

export type GanetiRelease = '3.0' | '3.1';

export interface ReleaseInfo {
  release: GanetiRelease;
  /** The Debian release that ships it. */
  debianSuite: string;
  /** Debian's package holding its Python code (`/usr/share/ganeti/<release>`). */
  pythonPackage: string;
}

/** Oldest first. */
export const GANETI_RELEASES: readonly ReleaseInfo[] = [
  { release: '3.0', debianSuite: 'bookworm', pythonPackage: 'ganeti-3.0' },
  { release: '3.1', debianSuite: 'trixie', pythonPackage: 'ganeti-3.1' },
];

/** What a node without Ganeti follows: the release today's Debian stable ships. */
export const NEWEST_RELEASE: GanetiRelease = '3.1';

/** The release's entry. */
export function releaseInfo(release: GanetiRelease): ReleaseInfo {
  return GANETI_RELEASES.find((r) => r.release === release) as ReleaseInfo;
}

/**
 * `--ganeti VALUE` as given on the command line ("3.0", "3.1"). Throws UsageError naming the
 * supported releases for anything else (`2.16`, `4`, `3`).
 */
export function parseGanetiRelease(raw: string): GanetiRelease {
  const found = GANETI_RELEASES.find((r) => r.release === raw.trim());
  if (!found) {
    throw new UsageError(`--ganeti ${raw}: not a supported Ganeti release; supported: ${GANETI_RELEASES.map((r) => r.release).join(', ')}`);
  }
  return found.release;
}

/**
 * The Ganeti release installed on this node, found as Debian installs it: the Python code in
 * `/usr/share/ganeti/<release>` with its `ganeti/backend.py` (newest first when several are
 * present, as Debian's `ganeti` meta package then points at the newest). `root` is for tests.
 * Undefined when none is installed.
 */
export function installedRelease(root = '/'): GanetiRelease | undefined {
  for (const r of [...GANETI_RELEASES].reverse()) {
    if (fs.existsSync(`${root.replace(/\/$/, '')}/usr/share/ganeti/${r.release}/ganeti/backend.py`)) return r.release;
  }
  return undefined;
}

/** The release a command follows: `--ganeti` when given, else the node's, else NEWEST_RELEASE. */
export function chooseRelease(raw: string | undefined, root = '/'): { release: GanetiRelease; why: 'option' | 'installed' | 'default' } {
  if (raw !== undefined) return { release: parseGanetiRelease(raw), why: 'option' };
  const installed = installedRelease(root);
  if (installed) return { release: installed, why: 'installed' };
  return { release: NEWEST_RELEASE, why: 'default' };
}

/** What chooseRelease decided. */
export type ReleaseChoice = ReturnType<typeof chooseRelease>;

/**
 * The release a command followed and why, for its narration: "Ganeti 3.1 (installed on this
 * node)", "Ganeti 3.0 (--ganeti)", "Ganeti 3.1 (none installed on this node: Debian stable's)".
 */
export function followedText(choice: ReleaseChoice): string {
  const why =
    choice.why === 'option'
      ? '--ganeti'
      : choice.why === 'installed'
        ? 'installed on this node'
        : `none installed on this node: Debian ${releaseInfo(choice.release).debianSuite}'s`;
  return `Ganeti ${choice.release} (${why})`;
}
