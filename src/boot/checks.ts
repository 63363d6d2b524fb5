/**
 * Read-only checks of an installed instance disk after its boot: the hostname is the instance
 * name (/etc/hostname, and the console's login prompt), every NIC with an address has it in the
 * network configuration (systemd-networkd, ifupdown, netplan), and root cannot log in with an
 * empty password (/etc/shadow, /etc/passwd). Nothing is mounted: files come through debugfs.
 */
import type { InstanceShape } from '../ganeti/environment';
import { ExtReader, rootFilesystem } from './inspect';

/** One check: passed, failed, or (ok null) not applicable, with what was found. */
export interface DiskCheck {
  name: string;
  ok: boolean | null;
  detail: string;
}

const NETWORK_DIRS = ['/etc/systemd/network', '/etc/network/interfaces.d', '/etc/netplan', '/etc/sysconfig/network-scripts'];

/** Where a NIC's address may be configured: every file of the usual network configuration places. */
function networkFiles(r: ExtReader): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  const add = (file: string) => {
    const text = r.read(file);
    if (text !== undefined) out.push({ file, text });
  };
  add('/etc/network/interfaces');
  for (const dir of NETWORK_DIRS) for (const name of r.list(dir) ?? []) add(`${dir}/${name}`);
  return out;
}

/**
 * The checks for disk 0 of `inst`; `loginLine` is the console line that showed readiness (its
 * host name is compared too). Never throws: a disk that cannot be read gives failed checks.
 */
export function diskChecks(inst: InstanceShape, loginLine?: string): DiskCheck[] {
  const { reader, problem } = rootFilesystem(inst.disks[0].path);
  if (!reader) return [{ name: 'root filesystem', ok: false, detail: problem ?? 'unreadable' }];
  const checks: DiskCheck[] = [];
  const short = inst.name.split('.')[0];
  const hostname = (reader.read('/etc/hostname') ?? '').trim();
  checks.push({
    name: 'hostname',
    ok: hostname === inst.name || hostname === short,
    detail: hostname ? `/etc/hostname is '${hostname}' (instance ${inst.name})` : '/etc/hostname is missing or empty',
  });
  const m = loginLine ? /^(\S+) login:/.exec(loginLine) : null;
  if (m) checks.push({ name: 'login prompt', ok: m[1] === inst.name || m[1] === short, detail: `the console says '${loginLine}'` });

  const withIp = inst.nics.map((n, i) => ({ i, ip: n.ip })).filter((n) => n.ip);
  if (!withIp.length) checks.push({ name: 'static address', ok: null, detail: 'no NIC has an IP address' });
  else {
    const files = networkFiles(reader);
    for (const n of withIp) {
      const re = new RegExp(`(^|[^0-9.])${n.ip!.replace(/\./g, '\\.')}(/|\\s|$)`, 'm');
      const hit = files.find((f) => re.test(f.text));
      checks.push({ name: `static address of NIC ${n.i}`, ok: !!hit, detail: hit ? `${n.ip} in ${hit.file}` : `${n.ip} is in none of ${files.length ? files.map((f) => f.file).join(', ') : 'the network configuration files (there are none)'}` });
    }
  }

  const shadow = reader.read('/etc/shadow');
  const passwd = reader.read('/etc/passwd');
  const field = (text: string | undefined) => text?.split('\n').find((l) => l.startsWith('root:'))?.split(':')[1];
  const sp = field(shadow);
  const pw = field(passwd);
  if (sp === undefined && pw === undefined) checks.push({ name: 'root password', ok: false, detail: 'no root entry in /etc/shadow or /etc/passwd' });
  else if (pw === '' || (pw === 'x' && sp === '')) checks.push({ name: 'root password', ok: false, detail: 'root has an empty password: anyone on the console logs in as root' });
  else checks.push({ name: 'root password', ok: true, detail: sp && /^[!*]/.test(sp) ? 'root is locked' : 'root has a password' });
  return checks;
}
