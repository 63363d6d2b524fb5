/**
 * The identity comparison of the cluster lifecycle (src/lifecycle/identity.ts, issue 16): what
 * makes a copy a new machine and a restore, rename or reinstall the same one. The disks
 * themselves are read through the real box in test/cluster-lifecycle.test.ts.
 */
import { Identity, identityChecks } from '../src/lifecycle/identity';

const keys = (tag: string) => ({
  ssh_host_ed25519_key: `PRIVATE ed25519 ${tag}`,
  'ssh_host_ed25519_key.pub': `ssh-ed25519 AAAA${tag} root@${tag}`,
  ssh_host_rsa_key: `PRIVATE rsa ${tag}`,
  'ssh_host_rsa_key.pub': `ssh-rsa AAAA${tag} root@${tag}`,
});
const web1: Identity = { hostKeys: keys('web1'), machineId: '0123456789abcdef0123456789abcdef' };
const verdict = (checks: ReturnType<typeof identityChecks>) => Object.fromEntries(checks.map((c) => [c.name, c.ok]));

describe('identityChecks', () => {
  it('a copy with new keys and an empty machine-id is a new machine', () => {
    expect(verdict(identityChecks(web1, { hostKeys: keys('web2'), machineId: '' }, 'new', 'copy'))).toEqual({ 'SSH host keys': true, 'machine-id': true });
  });

  it("a copy that kept the exported instance's keys or machine-id fails, naming what it kept", () => {
    const same = identityChecks(web1, { ...web1 }, 'new', 'copy');
    expect(verdict(same)).toEqual({ 'SSH host keys': false, 'machine-id': false });
    expect(same[0].detail).toMatch(/ssh_host_ed25519_key, ssh_host_rsa_key still the exported instance's/);
    // One key left behind is enough to fail.
    const oneLeft = { hostKeys: { ...keys('web2'), ssh_host_rsa_key: web1.hostKeys.ssh_host_rsa_key }, machineId: '' };
    expect(identityChecks(web1, oneLeft, 'new', 'copy')[0]).toMatchObject({ ok: false, detail: expect.stringMatching(/ssh_host_rsa_key still/) });
    // A fresh machine-id written by the script is not empty either: systemd must make it at the first boot.
    expect(verdict(identityChecks(web1, { hostKeys: keys('web2'), machineId: 'ffffffffffffffffffffffffffffffff' }, 'new', 'copy'))['machine-id']).toBe(false);
  });

  it('a copy whose keys were deleted and not made again fails', () => {
    expect(identityChecks(web1, { hostKeys: {}, machineId: '' }, 'new', 'copy')[0]).toMatchObject({ ok: false, detail: expect.stringMatching(/no SSH host keys/) });
  });

  it('a restore, rename or reinstall must keep every key file and the machine-id byte for byte', () => {
    expect(verdict(identityChecks(web1, { hostKeys: { ...web1.hostKeys }, machineId: web1.machineId }, 'kept', 'rename'))).toEqual({ 'SSH host keys': true, 'machine-id': true });
    const pubChanged = identityChecks(web1, { hostKeys: { ...web1.hostKeys, 'ssh_host_rsa_key.pub': 'other' }, machineId: web1.machineId }, 'kept', 'rename');
    expect(pubChanged[0]).toMatchObject({ ok: false, detail: 'rename: ssh_host_rsa_key.pub changed' });
    const emptied = identityChecks(web1, { hostKeys: web1.hostKeys, machineId: '' }, 'kept', 'reinstall');
    expect(emptied[1]).toMatchObject({ ok: false, detail: `reinstall: ${web1.machineId} became empty` });
    const lost = identityChecks(web1, { hostKeys: { ssh_host_rsa_key: web1.hostKeys.ssh_host_rsa_key }, machineId: web1.machineId }, 'kept', 'restore');
    expect(lost[0].ok).toBe(false);
  });

  it('a disk without SSH host keys has nothing to judge for keys', () => {
    const bare: Identity = { hostKeys: {}, machineId: undefined };
    expect(verdict(identityChecks(bare, bare, 'kept', 'rename'))).toEqual({ 'SSH host keys': null, 'machine-id': true });
  });
});
