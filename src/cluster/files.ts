/**
 * The text the box writes: shell run inside its namespaces, the nodes' /etc/hosts and sshd
 * configuration, and the ExtStorage provider that backs `-t ext` disks with loop devices
 * (ganeti-extstorage-interface(7)).
 */

/** The tag every box process carries in its argv: `bash -c REAPER ganeti-os-box STATE ROLE`. */
export const BOX_TAG = 'ganeti-os-box';

/**
 * PID 1 of the box and of each node: reaps orphans. The box's (role "box") first waits on fd 3
 * for the word "keep" from `up`; if `up` dies before saying it (crash, SIGKILL), it kills every
 * process of its namespaces and exits, so a half-made box holds no process, mount or link.
 */
export const REAPER = `# argv: bash -c REAPER ganeti-os-box STATE ROLE, so $0 is the tag, $1 the state directory, $2 the role
trap 'exit 0' TERM INT
if [ "$2" = box ]; then
  word=''
  IFS= read -r word <&3 || true
  if [ "$word" != keep ]; then
    kill -KILL -1 2>/dev/null || true
    exit 1
  fi
  exec 3<&-
fi
while :; do
  sleep 3600 &
  wait "$!"
done
`;

/** The node directory's layout (relative to the node's state directory). */
export const NODE_DIRS = {
  lib: 'var-lib-ganeti',
  log: 'var-log-ganeti',
  srv: 'srv',
  root: 'root',
  tmp: 'tmp',
} as const;

/** Directories overlaid per node (lower: the host's; upper and work in the node's state directory). */
export const OVERLAID = ['etc', 'usr', 'var'] as const;

/** Where the node's state directory is reachable inside the node (on the node's private /run). */
export const INNER_STATE = '/run/ganeti-os-box';

/**
 * Where a node built from a node root (node-root.ts) sees that root: this directory of its
 * state directory, a read-only bind of the root (in the node's mount namespace only).
 */
export const NODE_ROOT_DIR = 'lower';

/**
 * Where a node sees the ganeti-os that started its box (this directory of its state directory,
 * so INNER_STATE/CLI_DIR inside the node): `node`, the Node.js binary, and `package/` with the
 * package's bin, dist, templates, package.json and the node_modules its dependencies load from,
 * each a read-only bind made in the node's mount namespace only.
 */
export const CLI_DIR = 'cli';

/** What `ganeti-os` on a node's PATH is (in its /usr overlay's upper layer: the host's /usr is not touched). */
export const CLI_WRAPPER = '/usr/local/bin/ganeti-os';

/** The wrapper's text: the bound Node.js running the bound package. */
export const CLI_WRAPPER_TEXT = `#!/bin/sh
# The ganeti-os that started this cluster box (read-only, bound from its host by cluster up).
exec ${INNER_STATE}/${CLI_DIR}/node ${INNER_STATE}/${CLI_DIR}/package/bin/ganeti-os.js "$@"
`;

/**
 * The host directories a node hides behind its own (private /tmp, /root, /srv). Each is bound,
 * recursively and before it is hidden, at this directory of the node's state directory
 * (HOST_VIEW/tmp …, in the node's mount namespace only), so `cluster exec` can show the admin's
 * current directory at its own path inside the node.
 */
export const HIDDEN_HOST_DIRS = ['tmp', 'root', 'srv'] as const;
export const HOST_VIEW = 'host';

/**
 * The host's ganeti-os caches (the debian template's base systems and the image template's
 * images, by default): a node on the host's /var sees them through its /var overlay; a node
 * built from a node root sees them as the lower layer of an overlay on this directory of its
 * own /var, so the base system `test --cluster`'s prefill found or made on the host is there for
 * create in the box (which has no route out), and writes stay in the node's state directory.
 */
export const HOST_CACHE = '/var/cache/ganeti-os';

/** Where a root-built node sees HOST_CACHE before its /var is overlaid (a read-only bind, in its mount namespace only). */
export const HOST_CACHE_DIR = 'host-cache';

/** The upper and work layers of a root-built node's HOST_CACHE overlay (in its state directory). */
export const CACHE_LAYERS = ['cache.upper', 'cache.work'] as const;

/**
 * Run inside a fresh node namespace as `sh -c SETUP sh NODE_DIR HOSTNAME ROOT [SRC DST]...`:
 * first the host's HIDDEN_HOST_DIRS are bound at HOST_VIEW, and each SRC (a host path) is bound
 * read-only at DST (relative to NODE_DIR: the CLI_DIR parts); with ROOT (non-empty: a
 * node root for another Ganeti release), its /etc, /usr and /var are the overlays' lower layers
 * instead of the host's, so every command the node runs is the root's, and the host's
 * HOST_CACHE is the lower layer of the node's (when the host has one); private /run (the
 * node directory reached through it, bound from the shell's working directory so a state
 * directory under /run, /var or /tmp works too), overlays on /etc, /usr, /var, binds for Ganeti's
 * directories, /srv, /root, /tmp, a fresh sysfs (Ganeti looks for bridges under /sys/class/net).
 */
export const NODE_SETUP = `set -eu
cd "$1"
for d in ${HIDDEN_HOST_DIRS.join(' ')}; do
  mount --no-canonicalize --rbind "/$d" "${HOST_VIEW}/$d"
done
node=$1
name=$2
root=\${3:-}
shift 3
while [ $# -ge 2 ]; do
  mount --bind -o ro "$1" "$2"
  shift 2
done
set -- "$node" "$name" "$root"
lower=
cache=
if [ -n "\${3:-}" ]; then
  mount --no-canonicalize --bind -o ro "$3" ${NODE_ROOT_DIR}
  lower=${INNER_STATE}/${NODE_ROOT_DIR}
  if [ -d ${HOST_CACHE} ]; then
    mount --no-canonicalize --bind -o ro ${HOST_CACHE} ${HOST_CACHE_DIR}
    cache=${HOST_CACHE}
  fi
fi
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p ${INNER_STATE}
mount --no-canonicalize --rbind . ${INNER_STATE}
cd /
n=${INNER_STATE}
for d in ${OVERLAID.join(' ')}; do
  mount -t overlay overlay -o "lowerdir=$lower/$d,upperdir=$n/$d.upper,workdir=$n/$d.work" "/$d"
done
mkdir -p /var/lib/ganeti /var/log/ganeti
mount --bind "$n/${NODE_DIRS.lib}" /var/lib/ganeti
mount --bind "$n/${NODE_DIRS.log}" /var/log/ganeti
mount --bind "$n/${NODE_DIRS.srv}" /srv
mount --bind "$n/${NODE_DIRS.root}" /root
mount --bind "$n/${NODE_DIRS.tmp}" /tmp
if [ -n "$cache" ]; then
  mkdir -p "$cache"
  mount -t overlay overlay -o "lowerdir=$n/${HOST_CACHE_DIR},upperdir=$n/${CACHE_LAYERS[0]},workdir=$n/${CACHE_LAYERS[1]}" "$cache"
fi
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mkdir -p /run/lock /run/sshd
chmod 1777 /run/lock
printf '%s' "$2" >/proc/sys/kernel/hostname
ip link set lo up
`;

export interface HostEntry {
  ip: string;
  names: string[];
}

/** A node's private /etc/hosts. */
export function hostsFile(entries: HostEntry[]): string {
  return ['127.0.0.1\tlocalhost', ...entries.map((e) => `${e.ip}\t${e.names.join(' ')}`), ''].join('\n');
}

/** sshd on the node's address only: root by key, no PAM, SFTP (scp in OpenSSH 9.2 needs it). */
export function sshdConfig(address: string, hostKeys: string[]): string {
  return [
    `ListenAddress ${address}`,
    ...hostKeys.map((k) => `HostKey ${k}`),
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'AuthorizedKeysFile .ssh/authorized_keys',
    'PidFile /run/sshd.pid',
    'PrintMotd no',
    'UseDNS no',
    'Subsystem sftp /usr/lib/openssh/sftp-server',
    '',
  ].join('\n');
}

/** Where the provider keeps its volumes inside a node (sparse files). */
export const VOLUME_DIR = '/srv/volumes';

/** The ExtStorage provider's name (`-t ext --disk 0:size=…,provider=loopfile`). */
export const PROVIDER = 'loopfile';

const PROVIDER_HEAD = `#!/bin/sh
# ExtStorage provider of the ganeti-os cluster box: each volume is a sparse file on a loop device.
set -eu
dir=${VOLUME_DIR}
file="$dir/$VOL_NAME"
devices() { losetup --list --noheadings --output NAME --associated "$file" 2>/dev/null || true; }
`;

/** The provider's scripts and parameters.list (ganeti-extstorage-interface(7)). */
export const PROVIDER_FILES: Record<string, string> = {
  create: `${PROVIDER_HEAD}mkdir -p "$dir"
if [ -e "$file" ]; then echo "volume $VOL_NAME exists" >&2; exit 1; fi
truncate -s "$VOL_SIZE"M "$file"
`,
  attach: `${PROVIDER_HEAD}dev=$(devices | head -n 1)
if [ -z "$dev" ]; then dev=$(losetup --find --show "$file"); fi
echo "$dev"
`,
  detach: `${PROVIDER_HEAD}for dev in $(devices); do losetup --detach "$dev"; done
`,
  remove: `${PROVIDER_HEAD}for dev in $(devices); do losetup --detach "$dev"; done
rm -f "$file"
`,
  grow: `${PROVIDER_HEAD}truncate -s "$VOL_NEW_SIZE"M "$file"
for dev in $(devices); do losetup --set-capacity "$dev"; done
`,
  setinfo: `${PROVIDER_HEAD}exit 0
`,
  verify: `${PROVIDER_HEAD}exit 0
`,
  'parameters.list': '',
};
