/**
 * What an instance's serial console says, and whether it says the instance is ready. One
 * matcher for every reader of a console: `test` (QEMU's console file, src/boot/qemu.ts) and
 * `test --cluster` (the kvm hypervisor's serial socket, src/cluster/gnt.ts). Readiness must not
 * depend on the kernel staying quiet: a kernel message may land on the login prompt's line
 * (`instance1 login: [   71.93] powernow_k8: ...`) or even in the middle of it.
 */

/**
 * Console text without terminal escape sequences (CSI such as colours and agetty's `ESC [ ! p`
 * and `ESC [ 6 n` probes, OSC such as `ESC ] 104 BEL`, and two-byte escapes such as systemd's
 * `ESC M`) and carriage returns. A sequence cut off at the end stays until the rest arrives.
 */
export function consoleText(raw: string): string {
  return (
    raw
      // eslint-disable-next-line no-control-regex
      .replace(/\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[0-9=<>@-Z\\^_]/g, '')
      .replace(/\r/g, '')
  );
}

/**
 * Kernel messages as printk writes them on a console (`[   71.930000] text`, with the
 * timestamp Debian's kernels print), up to the end of their line: the kernel ends each message
 * with a newline, so one that lands inside another line ends where it began.
 */
const KERNEL_MESSAGE = /\[ *\d+\.\d+\] [^\n]*(?:\n|$)/g;

/** Console text with every timestamped kernel message taken out (the rest joined as written). */
export function withoutKernelMessages(text: string): string {
  return text.replace(KERNEL_MESSAGE, '');
}

/** getty's prompt, `<host> login:`, at the start of a line; whatever follows it on the line is not the prompt's. */
const LOGIN_PROMPT = /^(\S+) login:/m;

/**
 * Whether console output `raw` (everything read so far, escapes and carriage returns included)
 * shows readiness, and where: with no `ready`, a login prompt (`<host> login:` starting a line,
 * returned as `<host> login:`), found after the kernel messages are taken out, so a message
 * printed after the prompt, before it on the same line or inside it hides nothing; with `ready`
 * (`test --ready REGEX`), its first match in the console without kernel messages, else in the
 * console as written (a pattern may look for a kernel message), trimmed (a pattern of lookaheads only
 * matches '': ready all the same). Undefined while not ready. Pure: call it again on the longer text as more arrives (a prompt that arrives in pieces
 * matches once it is whole).
 */
export function consoleReady(raw: string, ready?: RegExp): string | undefined {
  const text = consoleText(raw);
  const quiet = withoutKernelMessages(text);
  if (ready) {
    // A copy without the global/sticky flags: a caller's lastIndex never changes the answer.
    const re = new RegExp(ready.source, ready.flags.replace(/[gy]/g, ''));
    const m = re.exec(quiet) ?? re.exec(text);
    return m ? m[0].trim() || m[0] : undefined;
  }
  const m = LOGIN_PROMPT.exec(quiet);
  return m ? `${m[1]} login:` : undefined;
}
