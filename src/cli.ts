/**
 * The command-line parser. It only wires: options in, one typed options object out to the
 * command's module (loaded on demand, so `--version` and `--help` stay fast). No file I/O and
 * no prompting here.
 */
import { Command, Option } from 'commander';

export type Dispatch = (command: string, options: Record<string, unknown>) => Promise<void>;

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
const GANETI_OPTION = ['--ganeti <release>', "the Ganeti release to follow: 3.0 or 3.1 (default: the one installed on this node, else 3.1)"] as const;

/** The help of every --os-dir: how a command finds the definition it acts on (src/commands/definition-dir.ts). */
const OS_DIR_HELP = 'the definition directory (default: the current one, or the nearest directory above it that holds a definition)';

/** --os-dir on a command that acts on one definition. */
const osDirOption = (cmd: Command): Command => cmd.option('--os-dir <dir>', OS_DIR_HELP);

/** The examples of `ganeti-os --help` and of the manual page: [command line, what it does]. */
export const EXAMPLES: [string, string][] = [
  ['ganeti-os new debian-os', 'a complete, working OS definition'],
  ['ganeti-os new my-os --template blank --api 20,15 --variant default --yes', ''],
  ['ganeti-os info debian-os', 'what Ganeti will see'],
  ['ganeti-os completion bash > ~/.local/share/bash-completion/completions/ganeti-os', ''],
];

export const EXIT_STATUS = 'Exit status: 0 success, 1 failure, 2 usage error, 130 cancelled, 70 internal error.';

/** The shells `ganeti-os completion` writes a script for. */
export const COMPLETION_SHELLS = ['bash', 'zsh', 'fish'];

export function buildProgram(version: string, dispatch: Dispatch): Command {
  const program = new Command('ganeti-os')
    .description('Write, maintain, validate and test Ganeti OS definitions.')
    .version(version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureHelp({ sortSubcommands: false })
    .enablePositionalOptions();
  program.addHelpText('after', `\nExamples:\n${EXAMPLES.map(([c, what]) => `  ${what ? c.padEnd(38) + what : c}`.trimEnd()).join('\n')}\n\n${EXIT_STATUS}`);

  const sub = (name: string, description: string) =>
    program.command(name).description(description).exitOverride().showHelpAfterError('(run with --help for usage)');

  sub('new', 'create a new OS definition directory from a template')
    .argument('<name>', "the OS name (Ganeti's OS directory name: letters, digits, '_' and '-')")
    .option(
      '--template <name|dir|git+url>',
      "template to start from: debian (the default: installs Debian), image (cloud images configured by cloud-init), blank (installs nothing), or a site template: a directory (./DIR) or git+URL[#ref] (see TEMPLATES.md); upgrade follows it",
    )
    .option('--api <list>', 'OS interface versions, comma-separated from 10, 15, 20 (default: the template\'s, 20,15,10)')
    .option('--variant <name>', 'a variant (repeatable; the first is the default; needs API 15 or 20)', collect)
    .option('--param <name=description>', 'an OS parameter (repeatable; needs API 20)', collect)
    .option('-C, --directory <parent>', 'create the definition inside this directory (default: the current one)')
    .option('-y, --yes', 'take the defaults for everything not given; never prompt')
    .option('--dry-run', 'print what would be written; write nothing')
    .option('--force', 'write into an existing directory (only the files of the plan are replaced)')
    .option('--json', 'print one JSON document describing what was (or would be) written')
    .action((name: string, opts: Record<string, unknown>) => dispatch('new', { ...opts, name }));

  osDirOption(
    sub('info', 'show what ganeti-os and Ganeti read from a definition: status, API versions, variants, parameters with their defaults and choices')
      .argument('[dir]', `${OS_DIR_HELP}; the same as --os-dir`),
  )
    .option('--json', 'print one JSON document')
    .action((dir: string | undefined, opts: Record<string, unknown>) => dispatch('info', { ...opts, dir }));

  // Maintenance commands: they act on the definition in (or above) the current directory unless --os-dir.
  const maintain = (name: string, description: string, help: { dryRun?: string; force?: string } = {}) =>
    osDirOption(sub(name, description))
      .option('--dry-run', help.dryRun ?? 'print what would change; change nothing')
      .option('--force', help.force ?? 'also replace or remove files you edited (your changes to them are lost)')
      .option('--json', 'print one JSON document describing what was (or would be) changed');

  maintain('add-variant', 'add a variant to variants.list, with its variants/<variant>.conf')
    .argument('<variant>', 'the variant name (letters, digits, ".", "_", "-")')
    .option('--set <KEY=VALUE>', "a setting for the variant's configuration (repeatable; for an existing variant, only these are changed)", collect)
    .option('--first', 'make it the first (default) variant; moves an existing one to the front')
    .action((variant: string, opts: Record<string, unknown>) => dispatch('add-variant', { ...opts, variant }));

  maintain('remove-variant', 'remove a variant from variants.list, and its configuration unless you edited it')
    .argument('<variant>', 'the variant to remove')
    .action((variant: string, opts: Record<string, unknown>) => dispatch('remove-variant', { ...opts, variant }));

  maintain('bump-api', 'move the definition to OS interface version 10, 15 or 20, migrating its files')
    .argument('<version>', 'the new highest version: 10, 15 or 20')
    .option('--only', 'list only that version in ganeti_api_version (default: it and the lower ones the scripts handle)')
    .action((version: string, opts: Record<string, unknown>) => dispatch('bump-api', { ...opts, version }));

  maintain('add-param', 'declare an OS parameter in parameters.list, with its default and checks (API 20)')
    .argument('<name>', 'the parameter name (lower case letters, digits, "_", "-"; reaches scripts as OSP_<NAME>)')
    .argument('<description>', 'one line describing it (shown by gnt-os info)')
    .option('--default <value>', 'the value the scripts see when none is given')
    .option('--choices <a,b,...>', 'the only values verify accepts')
    .option('--pattern <regex>', 'an extended regular expression every value must match as a whole')
    .action((name: string, description: string, opts: Record<string, unknown>) => dispatch('add-param', { ...opts, name, description }));

  maintain('remove-param', 'remove an OS parameter from parameters.list and its checks')
    .argument('<name>', 'the parameter to remove')
    .action((name: string, opts: Record<string, unknown>) => dispatch('remove-param', { ...opts, name }));
  maintain('upgrade', "bring a definition up to this ganeti-os's templates, merging in your edits (conflicts: exit 1)", {
    dryRun: 'print what would change, as a unified diff; change nothing',
    force: "where you and the template both changed a file, take the template's version instead of merging (yours is backed up in .ganeti-os/backups/); defaults.conf and variants/*.conf stay yours",
  })
    .option('--template <name|dir|git+url>', 'follow this template from now on (a moved site template, a new ref, a built-in name); default: the recorded one, a directory as it is now, a git ref at its new head')
    .action((opts: Record<string, unknown>) => dispatch('upgrade', opts));

  sub('validate', "Ganeti's verdict on OS definition directories, then what breaks later")
    .argument('[dir...]', 'definition directories (default: the current one, or the nearest directory above it that holds a definition)')
    .option('--os-dir <dir>', 'a definition directory, as the arguments (repeatable)', collect)
    .option('--json', 'print one JSON document')
    .option('--strict', 'treat warnings as failures')
    .option('--shellcheck', "add shellcheck's findings on the scripts (needs shellcheck)")
    .option(...GANETI_OPTION)
    .action((dirs: string[], opts: Record<string, unknown>) => dispatch('validate', { ...opts, dirs }));

  sub('diagnose', "what 'gnt-os diagnose' would say for this node")
    .argument('[search-dir...]', `OS search directories (default: Ganeti's on Debian: ${OS_SEARCH_DIRS})`)
    .option('--json', 'print one JSON document')
    .option(...GANETI_OPTION)
    .action((dirs: string[], opts: Record<string, unknown>) => dispatch('diagnose', { ...opts, dirs }));

  sub('run', 'run one script of a definition with the environment Ganeti gives it')
    .argument('<script>', 'create, import, export, rename or verify (also create_untrusted)')
    .option('--os-dir <dir>', OS_DIR_HELP)
    .option(
      '--disk <path[:size]>',
      'a disk (repeatable); a missing file is created sparse with SIZE (MiB, or 512M, 2G, 1T); also path=P,size=S,name=N,mode=ro|rw,template=T,uuid=U',
      collect,
    )
    .option('--disk-template <t>', 'file (default), plain (block devices) or sharedfile')
    .option('--file-driver <d>', 'file disk driver for DISK_N_BACKEND_TYPE: loop (default), blktap, blktap2')
    .option('--name <instance>', 'the instance name (default: instance1.example.com)')
    .option('--variant <v>', 'the OS variant (OS_VARIANT; default: the first listed)')
    .option('--nic <k=v,...>', 'a NIC: mac=,ip=,mode=bridged|routed|openvswitch,link=,name=,vlan=,network= (repeatable; default: one NIC with a generated MAC and the cluster default mode and link, as gnt-instance add)', collect)
    .option('--no-nics', 'an instance without NICs')
    .option('--network <k=v,...>', 'a network for --nic network=NAME: name=,subnet=,gateway=,subnet6=,gateway6=,mac-prefix=,tags=a:b (repeatable)', collect)
    .option('--osparam <k=v>', 'an OS parameter, becomes OSP_<K> (repeatable)', collect)
    .option('--osparam-private <k=v>', 'a private OS parameter (gnt-instance --os-parameters-private; repeatable)', collect)
    .option('--hvparam <k=v>', 'a hypervisor parameter instead of its default (repeatable)', collect)
    .option('--beparam <k=v>', 'a backend parameter instead of its default (repeatable)', collect)
    .option('--hypervisor <hv>', 'kvm (default), xen-pvm, xen-hvm, lxc, chroot or fake')
    .option('--index <n>', 'the disk for export/import (default 0)')
    .option('--old-name <name>', 'OLD_INSTANCE_NAME for rename (default: instance1.example.com, the default instance name)')
    .option('--reinstall', 'create as a reinstall (INSTANCE_REINSTALL=1)')
    .option('--debug', 'DEBUG_LEVEL=1')
    .option('--output <file>', "export: where the script's stream goes (- for standard output)")
    .option('--input <file>', 'import: the stream to feed the script (- for standard input)')
    .option('--print-env', 'print the environment as JSON and run nothing')
    .option('--log-dir <dir>', 'where the log file goes (default: $XDG_STATE_HOME/ganeti-os/log)')
    .option('--uuid <uuid>', 'INSTANCE_UUID (default: random)')
    .option('--ctime <t>', 'INSTANCE_CTIME (default: now)')
    .option('--mtime <t>', 'INSTANCE_MTIME (default: now)')
    .option('--primary-node <node>', 'INSTANCE_PRIMARY_NODE (default: node1.example.com)')
    .option('--secondary-node <node>', 'a secondary node (repeatable)', collect)
    .option('--json', 'print one JSON document describing the run')
    .option(...GANETI_OPTION)
    .action((script: string, opts: Record<string, unknown>) => dispatch('run', { ...opts, script }));

  sub('pack', 'build the definition as a Debian package (ganeti-os-<name>_<version>_all.deb)')
    .option('--os-dir <dir>', OS_DIR_HELP)
    .option('--version <version>', 'the package version (default: the last packed one if nothing changed, 1 the first time); must increase whenever the definition changes')
    .option('--output <dir>', 'where the .deb goes (default: the current directory)')
    .option('--maintainer <"Name <address>">', 'the Maintainer field, a real address (default: the last release\'s, else $DEBFULLNAME <$DEBEMAIL>, else your user and host names, as dh_make does)')
    .option('--json', 'print one JSON document describing the package')
    .action((opts: Record<string, unknown>) => dispatch('pack', opts));

  sub('rollout', 'install a packed definition on the nodes of this Ganeti cluster and check every node (run on the master)')
    .argument('<package>', 'the .deb from ganeti-os pack')
    .option('-n, --node <node>', 'only this node (repeatable; default: every node)', collect)
    .option('-g, --nodegroup <group>', 'only the nodes of this node group')
    .option('--reinstall', 'run dpkg -i also on nodes that have this version already (repairs hand-edited files)')
    .option('--dry-run', 'print the commands that would run; run nothing')
    .option('--json', 'print one JSON document with the per-node report')
    .action((pkg: string, opts: Record<string, unknown>) => dispatch('rollout', { ...opts, package: pkg }));

  sub('nodes-check', 'compare an installed OS definition across the nodes of this Ganeti cluster (run on the master)')
    .argument('[name]', 'the OS name (default: every OS directory in the search path of any node)')
    .option('-n, --node <node>', 'only this node (repeatable; default: every node)', collect)
    .option('-g, --nodegroup <group>', 'only the nodes of this node group')
    .option('--json', 'print one JSON document')
    .action((name: string | undefined, opts: Record<string, unknown>) => dispatch('nodes-check', { ...opts, name }));
  const cluster = sub('cluster', 'a disposable real Ganeti cluster (3.0 or 3.1) in namespaces on this machine (root)').enablePositionalOptions();
  const box = (name: string, description: string) =>
    cluster
      .command(name)
      .description(description)
      .exitOverride()
      .showHelpAfterError('(run with --help for usage)')
      .option('--state <dir>', 'the box\'s state directory (default: $GANETI_OS_CLUSTER_STATE or /var/lib/ganeti-os/cluster)');
  box('up', 'bring a cluster up: nodes in their own namespaces, real daemons, fake and kvm, file and ext disks')
    .option('--nodes <n>', 'number of nodes, 1 to 8 (default 1)')
    .option(GANETI_OPTION[0], `${GANETI_OPTION[1]}: the nodes run it, from a node root built once from Debian's packages for it when it is not this node's`)
    .option('--cache <dir>', 'where node roots are kept and reused (default: $GANETI_OS_CLUSTER_CACHE or /var/cache/ganeti-os/cluster-roots)')
    .option('--json', 'print one JSON document describing the box')
    .action((opts: Record<string, unknown>) => dispatch('cluster', { ...opts, action: 'up' }));
  box('down', 'stop the box and remove everything it made (idempotent; also cleans a half-made box)')
    .option('--json', 'print one JSON document')
    .action((opts: Record<string, unknown>) => dispatch('cluster', { ...opts, action: 'down' }));
  box('status', 'what runs in the box (exit 0 only when it is up)')
    .option('--json', 'print one JSON document')
    .action((opts: Record<string, unknown>) => dispatch('cluster', { ...opts, action: 'status' }));
  box('exec', 'run a command on a node of the box, with a clean environment, in the current directory (ganeti-os there is this one): ganeti-os cluster exec -- ganeti-os rollout ./ganeti-os-NAME_1_all.deb')
    .option('--node <name>', 'the node (default: the master, node1)')
    .argument('<command...>', 'the command and its arguments (put -- before it)')
    .passThroughOptions()
    .action((command: string[], opts: Record<string, unknown>) => dispatch('cluster', { ...opts, command, action: 'exec' }));

  sub('test', 'prove a definition installs, boots, exports, imports, boots a grown disk, renames and reinstalls: on throwaway disks under QEMU, or with --cluster through the cluster box')
    .option('--os-dir <dir>', OS_DIR_HELP)
    .option('--variant <v>', 'a variant to test (repeatable; default: the first listed)', collect)
    .option('--osparam <k=v>', 'an OS parameter (repeatable)', collect)
    .option('--nic <k=v,...>', 'a NIC as for run (repeatable; default: one NIC as gnt-instance add makes it)', collect)
    .option('--no-nics', 'an instance without NICs')
    .option('--network <k=v,...>', 'a network for --nic network=NAME, as for run (repeatable)', collect)
    .option('--hypervisor <hv>', 'kvm (default), xen-pvm, xen-hvm, lxc, chroot or fake')
    .option('--hvparam <k=v>', "a hypervisor parameter (repeatable), e.g. kernel_path= to boot the instance's own kernel", collect)
    .option('--beparam <k=v>', 'a backend parameter (repeatable)', collect)
    .option('--name <instance>', 'the instance name (default: instance1.example.com)')
    .option('--disk-size <size>', 'disk 0 (MiB, or 512M, 2G...; default 2G, 1024 MiB with --cluster); the import disk is a quarter larger, then grows by another quarter of disk 0 before its boot (--cluster: disk 0 grows by a quarter with gnt-instance grow-disk)')
    .option('--accel <a>', 'QEMU accelerator: tcg (default) or kvm')
    .option('--firmware <f>', 'boot under bios, uefi (OVMF) or secureboot (OVMF with Secure Boot enforced and Microsoft\'s keys); repeatable (default: the firmware disk 0 is made for, without Secure Boot); the import boots under the last; --cluster: once, on kvm, through gnt-instance start', collect)
    .option('--boot-timeout <seconds>', 'how long a boot may take to show readiness (default 600)')
    .option('--ready <regex>', 'the console line that means ready (default: a login prompt)')
    .option('--work-dir <dir>', 'where the throwaway disks and logs go (default: a new directory in $TMPDIR)')
    .option('--keep', 'keep disks and logs (by default only the logs of a failed run are kept)')
    .option('--cluster', "through the running cluster box's gnt-* commands instead (ganeti-os cluster up): install, gnt-os diagnose/info, a bad value and a bad variant refused, add, start, export, grow-disk and a restart (kvm with a boot: the root must fill the disk), import as a copy, a restore (debian), rename, reinstall, remove, gnt-cluster verify")
    .option('--state <dir>', "--cluster: the box's state directory (default: $GANETI_OS_CLUSTER_STATE or /var/lib/ganeti-os/cluster)")
    .option('--disk-template <t>', "--cluster: file (default) or ext (a loop device from the box's ExtStorage provider)")
    .option('--memory <mib>', '--cluster: instance memory in MiB (default 512)')
    .option('--boot', '--cluster: wait for a login prompt on the serial console (default: on kvm for debian-template definitions, and with --firmware)')
    .option('--no-boot', '--cluster: only check that the instance starts')
    .option('--prefill', '--cluster: run create once on the host first, to fill download caches (default: for debian-template definitions)')
    .option('--no-prefill', '--cluster: do not')
    .option('--bad-osparam <name=value>', "--cluster: a value the master must refuse (default: one outside a declared parameter's choices)")
    .option('--no-bad-osparam', '--cluster: skip the refused-value step')
    .option('--burnin', "--cluster: then run Ganeti's burnin with the definition (create, stop/start, grow, reinstall, reboot, renames, NIC and disk changes, remove), each phase a step; file disks")
    .option('--json', 'print one JSON document with every step')
    .option(...GANETI_OPTION)
    .action((opts: Record<string, unknown>) => dispatch('test', { ...opts, variants: opts.variant, variant: undefined }));

  const template = sub('template', 'site templates: start one from a built-in template, check one (the format: TEMPLATES.md)').enablePositionalOptions();
  const tsub = (name: string, description: string) =>
    template.command(name).description(description).exitOverride().showHelpAfterError('(run with --help for usage)');
  tsub('init', 'write a new site template into a directory, a copy of a built-in one to make your own')
    .argument('<dir>', 'the new template directory (must not exist, or be empty)')
    .option('--from <template>', 'the built-in template to start from (default: debian)')
    .option('--name <name>', "the template's name (default: the directory's name)")
    .option('--dry-run', 'print the files that would be written; write nothing')
    .option('--json', 'print one JSON document describing the template')
    .action((dir: string, opts: Record<string, unknown>) => dispatch('template', { ...opts, dir, action: 'init' }));
  tsub('check', 'check a site template as new and upgrade would load it, and render it with its defaults (exit 1 naming the problem)')
    .argument('<source>', 'the template: a directory or git+URL[#ref]')
    .option('--json', 'print one JSON document describing the template')
    .action((source: string, opts: Record<string, unknown>) => dispatch('template', { ...opts, source, action: 'check' }));

  sub('completion', `print a shell script that completes ganeti-os's commands, options, templates and, inside a definition, its variants and parameters (${COMPLETION_SHELLS.join(', ')})`)
    .argument('<shell>', `${COMPLETION_SHELLS.join(', ')}; e.g. ganeti-os completion bash > ~/.local/share/bash-completion/completions/ganeti-os, or source <(ganeti-os completion bash) in ~/.bashrc`)
    .action((shell: string) => dispatch('completion', { shell }));
  // What the completion scripts call: the candidates for the command line typed so far.
  program
    .command('__complete', { hidden: true })
    .exitOverride()
    .option('--shell <shell>', 'the shell asking')
    .argument('[line...]', 'the command line up to the cursor (after --)')
    .action((line: string[], opts: Record<string, unknown>) => dispatch('__complete', { ...opts, line: line.join(' '), program: describeProgram(program) }));

  return program;
}

export interface OptionSpec {
  /** As written in help: "-C, --directory <parent>". */
  flags: string;
  long?: string;
  short?: string;
  /** The value's name ("<dir>"), absent for a flag. */
  value?: string;
  repeatable: boolean;
  description: string;
}

export interface ArgumentSpec {
  name: string;
  required: boolean;
  variadic: boolean;
  description: string;
}

/** A command as data: what the manual pages and the completion are made from. */
export interface CommandSpec {
  name: string;
  /** From the program down: ['ganeti-os', 'cluster', 'up']. */
  path: string[];
  description: string;
  arguments: ArgumentSpec[];
  /** Its options, -h/--help (and the program's -V/--version) included. */
  options: OptionSpec[];
  commands: CommandSpec[];
  hidden: boolean;
  /** After `--` everything is its arguments (cluster exec). */
  passThrough: boolean;
}

/** The program built by buildProgram, as data (no commander types), for man pages and completion. */
export function describeProgram(cmd: Command, parents: string[] = []): CommandSpec {
  const c = cmd as Command & { _hidden?: boolean; _passThroughOptions?: boolean; _versionOptionName?: string };
  const path = [...parents, cmd.name()];
  const options: OptionSpec[] = cmd.options
    .filter((o) => !o.hidden)
    .map((o) => ({
      flags: o.flags,
      long: o.long,
      short: o.short,
      value: /[<[][^>\]]*[>\]]/.exec(o.flags)?.[0],
      repeatable: o.parseArg === collect,
      description: o.description,
    }));
  options.push({ flags: '-h, --help', long: '--help', short: '-h', repeatable: false, description: 'show help' });
  return {
    name: cmd.name(),
    path,
    description: cmd.description(),
    arguments: cmd.registeredArguments.map((a) => ({ name: a.name(), required: a.required, variadic: a.variadic, description: a.description })),
    options,
    commands: cmd.commands.map((sub) => describeProgram(sub, path)),
    hidden: !!c._hidden,
    passThrough: !!c._passThroughOptions,
  };
}

const OS_SEARCH_DIRS = '/srv/ganeti/os, /usr/local/lib/ganeti/os, /usr/lib/ganeti/os, /usr/share/ganeti/os';

export { Option };
