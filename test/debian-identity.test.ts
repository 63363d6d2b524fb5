/**
 * Issue 16: an instance imported under a new name is a new machine. Through Ganeti 3.0's own code
 * (InstanceOsAdd, the import-export daemon's command lines, RunRenameInstance as Ganeti runs it
 * right after every import): export web1, import as web2 + rename web1 -> web2 gives new SSH host
 * keys, an empty machine-id and no per-machine state; import as web1 (a restore), a plain rename
 * and a reinstall keep them; copy-identity=keep keeps them on a copy.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstanceSpec, instanceOsAdd, runExport, runImport, runRename } from './helpers/ganeti';
import { resources, sparseDisk, withMounted } from './helpers/disks';
import { DebianWorkspace, debianWorkspace, newestLog, releaseWorkspace } from './helpers/debian';
import { describeSystem } from './helpers/system';

const NEEDS = ['mmdebstrap', 'sfdisk', 'partx', 'losetup', 'mkfs.ext4', 'blkid', 'ssh-keygen'];
const MACHINE_ID = '0123456789abcdef0123456789abcdef\n';

/** What makes the system on a disk one machine: host keys, machine-id and per-machine state. */
interface Identity {
  keys: Record<string, string>;
  machineId: string;
  dbusMachineId: string | null;
  randomSeed: boolean;
  credentialSecret: boolean;
  leases: string[];
  marker: boolean;
  hostname: string;
}

describeSystem('debian template: identity across import and rename (issue 16)', { root: true, ganeti: true, commands: NEEDS }, () => {
  let ws: DebianWorkspace;
  let work: string;
  let osDir: string;
  let tmp: string;
  let logdir: string;
  let web1: string;
  let stream: string;
  let original: Identity;

  const instance = (name: string, diskPath: string, osparams: Record<string, string> = {}): InstanceSpec => ({
    name,
    os: 'debian-os+bookworm',
    os_dir: osDir,
    disks: [{ path: diskPath }],
    nics: [{ mac: 'aa:00:00:00:16:01', ip: '192.0.2.16', network: { subnet: '192.0.2.0/24', gateway: '192.0.2.1' } }],
    hvparams: { kernel_path: '' },
    osparams: { 'install-kernel': 'no', ...osparams },
  });
  const identity = (d: string): Identity =>
    withMounted(d, (root) => {
      const p = (f: string) => path.join(root, f);
      const keys: Record<string, string> = {};
      for (const f of fs.readdirSync(p('etc/ssh')).filter((n) => n.startsWith('ssh_host_'))) keys[f] = fs.readFileSync(p(`etc/ssh/${f}`), 'utf8');
      const dbus = p('var/lib/dbus/machine-id');
      return {
        keys,
        machineId: fs.readFileSync(p('etc/machine-id'), 'utf8'),
        dbusMachineId: fs.existsSync(dbus) && !fs.lstatSync(dbus).isSymbolicLink() ? fs.readFileSync(dbus, 'utf8') : null,
        randomSeed: fs.existsSync(p('var/lib/systemd/random-seed')),
        credentialSecret: fs.existsSync(p('var/lib/systemd/credential.secret')),
        leases: fs.existsSync(p('var/lib/dhcp')) ? fs.readdirSync(p('var/lib/dhcp')).filter((f) => f.endsWith('.leases')) : [],
        marker: fs.existsSync(p('var/lib/ganeti-os/imported')),
        hostname: fs.readFileSync(p('etc/hostname'), 'utf8').trim(),
      };
    });
  const expectNoLeaks = () => expect(resources(work, tmp)).toEqual({ loops: [], mounts: [], temps: [] });
  const renameLog = () => newestLog(logdir, 'rename-');
  /** Import the export of web1 onto a new disk as NAME, then rename from web1 as Ganeti does. */
  function importAs(name: string, file: string, osparams: Record<string, string> = {}) {
    const d = sparseDisk(path.join(work, file), 2048);
    const inst = instance(name, d, osparams);
    const r = runImport(inst, 0, stream);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.ok).toBe(true);
    expect(r.stderr).toMatch(/disk 0 marked as imported/);
    // Between import and rename the marker is on the disk.
    expect(identity(d).marker).toBe(true);
    fs.rmSync(logdir, { recursive: true, force: true });
    const rr = runRename(inst, 'web1.example.com', logdir);
    expect(rr.error).toBeUndefined();
    expect(rr.ok).toBe(true);
    expectNoLeaks();
    return { disk: d, id: identity(d), log: renameLog() };
  }

  beforeAll(() => {
    ws = debianWorkspace('debian-id');
    ({ work, tmp, logdir, osDir } = ws);
    web1 = sparseDisk(path.join(work, 'web1.img'), 2048);
    stream = path.join(work, 'web1.stream');
  });

  afterAll(() => releaseWorkspace(ws));

  it('creates web1, boots it once (simulated: machine-id, random seed, DHCP lease) and exports it', () => {
    const r = instanceOsAdd(instance('web1.example.com', web1), { logdir });
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    // What a first boot leaves behind.
    withMounted(web1, (root) => {
      fs.writeFileSync(path.join(root, 'etc/machine-id'), MACHINE_ID);
      fs.mkdirSync(path.join(root, 'var/lib/dbus'), { recursive: true });
      fs.rmSync(path.join(root, 'var/lib/dbus/machine-id'), { force: true });
      fs.writeFileSync(path.join(root, 'var/lib/dbus/machine-id'), MACHINE_ID);
      fs.writeFileSync(path.join(root, 'var/lib/systemd/random-seed'), 'seed');
      fs.writeFileSync(path.join(root, 'var/lib/systemd/credential.secret'), 'secret');
      fs.mkdirSync(path.join(root, 'var/lib/dhcp'), { recursive: true });
      fs.writeFileSync(path.join(root, 'var/lib/dhcp/dhclient.eth0.leases'), 'lease { fixed-address 192.0.2.16; }\n');
    }, true);
    original = identity(web1);
    expect(Object.keys(original.keys).sort()).toEqual(['ssh_host_ecdsa_key', 'ssh_host_ecdsa_key.pub', 'ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'ssh_host_rsa_key', 'ssh_host_rsa_key.pub']);
    expect(original.keys['ssh_host_ed25519_key.pub']).toContain('root@web1.example.com');
    expect(original.machineId).toBe(MACHINE_ID);
    expect(original.marker).toBe(false);
    const e = runExport(instance('web1.example.com', web1), 0, stream);
    expect(e.ok).toBe(true);
    expectNoLeaks();
  }, 1200_000);

  it('import as web2 + rename web1 -> web2: new host keys (made as create makes them), empty machine-id, no per-machine state', () => {
    const { id, log } = importAs('web2.example.com', 'web2.img');
    expect(id.hostname).toBe('web2.example.com');
    expect(id.marker).toBe(false);
    expect(Object.keys(id.keys).sort()).toEqual(Object.keys(original.keys).sort());
    for (const k of Object.keys(original.keys)) expect([k, id.keys[k] === original.keys[k]]).toEqual([k, false]);
    expect(id.keys['ssh_host_ed25519_key.pub']).toContain('root@web2.example.com');
    expect(id.machineId).toBe('');
    expect(id.dbusMachineId).toBeNull();
    expect(id.randomSeed).toBe(false);
    expect(id.credentialSecret).toBe(false);
    expect(id.leases).toEqual([]);
    expect(log).toMatch(/new identity: imported from web1\.example\.com as web2\.example\.com \(a copy; copy-identity=keep would keep it\)/);
    expect(log).toMatch(/made new SSH host keys for web2\.example\.com/);
  }, 600_000);

  it('import as web1 + rename web1 -> web1 (a restore): identical identity', () => {
    const { id, log } = importAs('web1.example.com', 'restore.img');
    expect(id.keys).toEqual(original.keys);
    expect(id.machineId).toBe(MACHINE_ID);
    expect(id.dbusMachineId).toBe(MACHINE_ID);
    expect(id.leases).toEqual(['dhclient.eth0.leases']);
    expect(id.marker).toBe(false);
    expect(log).toMatch(/identity kept: imported under its exported name web1\.example\.com \(a restore\)/);
  }, 600_000);

  it('copy-identity=keep: import as web3 keeps the identity on a deliberate copy', () => {
    const { id, log } = importAs('web3.example.com', 'web3.img', { 'copy-identity': 'keep' });
    expect(id.hostname).toBe('web3.example.com');
    expect(id.keys).toEqual(original.keys);
    expect(id.machineId).toBe(MACHINE_ID);
    expect(id.marker).toBe(false);
    expect(log).toMatch(/identity kept: imported from web1\.example\.com as web3\.example\.com, and copy-identity is keep/);
  }, 600_000);

  it('a plain gnt-instance rename (no import) keeps the identity, and so does a second rename after a copy', () => {
    fs.rmSync(logdir, { recursive: true, force: true });
    const r = runRename(instance('web1b.example.com', web1), 'web1.example.com', logdir);
    expect(r.ok).toBe(true);
    expectNoLeaks();
    const id = identity(web1);
    expect(id.hostname).toBe('web1b.example.com');
    expect(id.keys).toEqual(original.keys);
    expect(id.machineId).toBe(MACHINE_ID);
    expect(id.leases).toEqual(['dhclient.eth0.leases']);
    expect(renameLog()).toMatch(/identity kept: a plain rename \(no import marker on the disk\)/);

    // A marker left by an import whose rename failed (Ganeti only warns) names another
    // instance: stale, removed, and the rename is a plain one.
    withMounted(web1, (root) => {
      fs.mkdirSync(path.join(root, 'var/lib/ganeti-os'), { recursive: true });
      fs.writeFileSync(path.join(root, 'var/lib/ganeti-os/imported'), 'instance=web1.example.com\nuuid=x\ntime=2026-01-01T00:00:00Z\n');
    }, true);
    fs.rmSync(logdir, { recursive: true, force: true });
    expect(runRename(instance('web1c.example.com', web1), 'web1b.example.com', logdir)).toEqual({ ok: true });
    const stale = identity(web1);
    expect(stale.keys).toEqual(original.keys);
    expect(stale.machineId).toBe(MACHINE_ID);
    expect(stale.marker).toBe(false);
    expect(renameLog()).toMatch(/removed a stale import marker \(written when importing as 'web1\.example\.com', not as web1c\.example\.com\)[^]*identity kept: a plain rename/);

    // web2 was a copy: the marker is consumed, so renaming web2 later keeps web2's new keys.
    const web2 = path.join(work, 'web2.img');
    const before = identity(web2);
    fs.rmSync(logdir, { recursive: true, force: true });
    expect(runRename(instance('web2b.example.com', web2), 'web2.example.com', logdir)).toEqual({ ok: true });
    expect(identity(web2).keys).toEqual(before.keys);
  }, 600_000);

  it('reinstall keeps the host keys and the machine-id', () => {
    const r = instanceOsAdd(instance('web1c.example.com', web1), { logdir, reinstall: true });
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expectNoLeaks();
    const id = identity(web1);
    expect(id.keys).toEqual(original.keys);
    expect(id.machineId).toBe(MACHINE_ID);
  }, 600_000);

  it('parameter copy-identity accepts new and keep only', () => {
    const bad = instanceOsAdd(instance('web9.example.com', sparseDisk(path.join(work, 'bad.img'), 2048), { 'copy-identity': 'maybe' }), { logdir });
    expect(bad.ok).toBe(false);
    expect(String(bad.error)).toMatch(/invalid value 'maybe' for parameter copy-identity: expected one of new keep/);
  });
});
