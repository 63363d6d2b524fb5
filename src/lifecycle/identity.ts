/**
 * What makes the system on an instance disk one machine among others (issue 16): its SSH host
 * keys and /etc/machine-id. Read read-only from the disk (debugfs in catastrophic mode through
 * src/boot/inspect.ts: no mount, no loop device, no journal replay, so nothing to release), and
 * compared across a lifecycle step: an import under a new name (Ganeti's import, then rename with
 * different names) must make a new machine; a restore under the same name, a rename and a
 * reinstall must keep it.
 */
import { rootFilesystem } from '../boot/inspect';

export interface Identity {
  /** ssh_host_* file name → content (private and public keys). */
  hostKeys: Record<string, string>;
  /** /etc/machine-id's content without the newline; undefined when the file is absent. */
  machineId: string | undefined;
}

export type IdentityCheck = { name: string; ok: boolean | null; detail: string };

/** The identity of the system on `disk` (a file or block device). Throws Error when no ext root filesystem with /etc is found. */
export function readIdentity(disk: string): Identity {
  const root = rootFilesystem(disk);
  if (!root.reader) throw new Error(`cannot read the system on ${disk}: ${root.problem}`);
  const reader = root.reader;
  const hostKeys: Record<string, string> = {};
  for (const f of (reader.list('/etc/ssh') ?? []).filter((n) => n.startsWith('ssh_host_')).sort()) {
    const text = reader.read(`/etc/ssh/${f}`);
    if (text !== undefined) hostKeys[f] = text;
  }
  const machineId = reader.read('/etc/machine-id')?.trim();
  return { hostKeys, machineId };
}

const keyNames = (i: Identity) => Object.keys(i.hostKeys).filter((k) => k.endsWith('_key'));
const describeId = (m: string | undefined) => (m === undefined ? 'absent' : m === '' ? 'empty' : m);

/**
 * Compare the identity after a step with the one before. expect 'new' (a copy): every private
 * host key present and different, /etc/machine-id empty (systemd makes a new one at the first
 * boot); 'kept': the same host keys (every file, byte for byte) and the same machine-id. In:
 * both identities and a phrase for the case ("imported as X from Y"). Out: one check per
 * property (ok false: the step did the wrong thing).
 */
export function identityChecks(before: Identity, after: Identity, expect: 'new' | 'kept', what: string): IdentityCheck[] {
  const beforeKeys = keyNames(before);
  const afterKeys = keyNames(after);
  if (expect === 'new') {
    const same = afterKeys.filter((k) => before.hostKeys[k] !== undefined && before.hostKeys[k] === after.hostKeys[k]);
    const keys: IdentityCheck = !afterKeys.length
      ? { name: 'SSH host keys', ok: beforeKeys.length ? false : null, detail: beforeKeys.length ? `${what}: the copy has no SSH host keys` : 'no SSH host keys on either disk' }
      : same.length
        ? { name: 'SSH host keys', ok: false, detail: `${what}: ${same.join(', ')} still the exported instance's` }
        : { name: 'SSH host keys', ok: true, detail: `${what}: new (${afterKeys.join(', ')})` };
    const id: IdentityCheck = {
      name: 'machine-id',
      ok: after.machineId === '',
      detail: after.machineId === '' ? `${what}: empty (systemd makes a new one at the first boot; the exported instance's: ${describeId(before.machineId)})` : `${what}: ${describeId(after.machineId)}, not empty (the exported instance's: ${describeId(before.machineId)})`,
    };
    return [keys, id];
  }
  const changed = [...new Set([...Object.keys(before.hostKeys), ...Object.keys(after.hostKeys)])].filter((k) => before.hostKeys[k] !== after.hostKeys[k]).sort();
  const keys: IdentityCheck = changed.length
    ? { name: 'SSH host keys', ok: false, detail: `${what}: ${changed.join(', ')} changed` }
    : { name: 'SSH host keys', ok: beforeKeys.length ? true : null, detail: beforeKeys.length ? `${what}: kept (${beforeKeys.join(', ')})` : 'no SSH host keys on the disk' };
  const id: IdentityCheck =
    before.machineId === after.machineId
      ? { name: 'machine-id', ok: true, detail: `${what}: kept (${describeId(after.machineId)})` }
      : { name: 'machine-id', ok: false, detail: `${what}: ${describeId(before.machineId)} became ${describeId(after.machineId)}` };
  return [keys, id];
}
