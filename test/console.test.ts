/**
 * Readiness on a serial console (src/boot/console.ts), the one matcher `test` and `test
 * --cluster` use, on consoles captured from real boots (test/fixtures/console, see its README):
 * trixie instances whose kernel prints messages after the login prompt, so that they land on
 * the prompt's line (the case that made `test` wait 600 s for "no login prompt"), with the
 * console the template used to leave (every kernel message shown) and with its quiet console
 * (kernel.printk = 3 4 1 7: only the critical one shows), and a bookworm instance; each also fed
 * in pieces the way a console reader gets them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { consoleReady, consoleText, withoutKernelMessages } from '../src/boot/console';

const FIXTURES = path.join(__dirname, 'fixtures', 'console');
const captured = (name: string) => fs.readFileSync(path.join(FIXTURES, name), 'latin1');

/** Feed `text` in pieces of `size` bytes (a console read); the first prefix where it is ready, and what it matched. */
function firstReady(text: string, size: number, ready?: RegExp): { at: number; matched: string } | undefined {
  for (let end = size; ; end += size) {
    const matched = consoleReady(text.slice(0, Math.min(end, text.length)), ready);
    if (matched !== undefined) return { at: Math.min(end, text.length), matched };
    if (end >= text.length) return undefined;
  }
}

describe('consoleReady on captured consoles', () => {
  it.each([
    ['trixie-loud.log', 'instance1 login:'],
    ['trixie-quiet.log', 'instance1 login:'],
    ['bookworm-quiet.log', 'instance1 login:'],
  ])('%s: ready at its login prompt, whole and fed in pieces', (file, prompt) => {
    const text = captured(file);
    expect(consoleReady(text)).toBe(prompt);
    const promptAt = consoleText(text).indexOf(prompt);
    expect(promptAt).toBeGreaterThan(0);
    // Nothing before the prompt counts as ready; in pieces of any size it is found once whole.
    expect(consoleReady(text.slice(0, text.indexOf(prompt.slice(0, -3))))).toBeUndefined();
    for (const size of [1, 7, 64, 4096]) expect(firstReady(text, size)?.matched).toBe(prompt);
  });

  it.each(['trixie-loud.log', 'trixie-quiet.log', 'bookworm-quiet.log'])('%s: finds the prompt whose line carries a kernel message, which the old end-of-line patterns missed', (file) => {
    const text = captured(file);
    const line = consoleText(text).split('\n').find((l) => l.startsWith('instance1 login:'))!;
    // trixie-loud.log carries the very message of the report, powernow_k8's; the quiet ones, the hook's crit message.
    expect(line).toMatch(file === 'trixie-loud.log' ? /^instance1 login: \[ *\d+\.\d+\] powernow_k8: / : /^instance1 login: \[ *\d+\.\d+\] ganeti-os-test: a late kernel message \(crit\)$/);
    // The patterns `test` and `test --cluster` used before.
    expect(/^\S+ login: ?$/m.test(consoleText(text))).toBe(false);
    expect(/login: *$/m.test(consoleText(text))).toBe(false);
    expect(consoleReady(text)).toBe('instance1 login:');
  });

  it('the quiet console: after the prompt only the critical kernel message shows; the old console shows both', () => {
    const after = (file: string) => {
      const text = consoleText(captured(file));
      return text.slice(text.indexOf('instance1 login:'));
    };
    expect(after('trixie-loud.log')).toMatch(/a late kernel message \(err\)[^]*a late kernel message \(crit\)/);
    for (const file of ['trixie-quiet.log', 'bookworm-quiet.log']) {
      expect(after(file)).toMatch(/a late kernel message \(crit\)/);
      expect(after(file)).not.toMatch(/\(err\)/);
    }
  });

  it('leaves agetty\'s terminal probes and systemd\'s escapes out of the text', () => {
    const text = consoleText(captured('trixie-quiet.log'));
    expect(text).not.toMatch(/\u001b/);
    expect(text).toMatch(/^Debian GNU\/Linux 13 instance1\S* ttyS0$/m);
    expect(consoleText('\u001b[!p\u001b]104\u0007\u001b[?7h\u001b[6n\u001b[32766;32766H\u001b[6n\r\nweb1 login: ')).toBe('\nweb1 login: ');
    expect(consoleText('\u001bM\u001b[K[\u001b[0;32m  OK  \u001b[0m] Started')).toBe('[  OK  ] Started');
    // A sequence cut off at the end of a read stays until the rest arrives.
    expect(consoleText('web1 \u001b[0')).toBe('web1 \u001b[0');
  });
});

describe('consoleReady: kernel messages anywhere', () => {
  const banner = '\r\nDebian GNU/Linux 13 web1 ttyS0\r\n\r\n';
  it.each([
    ['after the prompt', `${banner}web1 login: [   71.930541] powernow_k8: Power state transitions not supported\r\n`],
    ['before the prompt on its line', `${banner}[   71.930541] powernow_k8: Power state transitions not supported\r\nweb1 login: `],
    ['inside the prompt', `${banner}web1 lo[   71.930541] powernow_k8: Power state transitions not supported\r\ngin: `],
    ['two of them, with escapes', `${banner}\u001b[0mweb1 login: [   71.9] a\r\n[   72.1] b\r\n`],
  ])('%s', (_what, text) => {
    expect(consoleReady(text)).toBe('web1 login:');
  });

  it('is not ready before the prompt is whole, nor on text that only mentions logins', () => {
    expect(consoleReady(`${banner}web1 log`)).toBeUndefined();
    expect(consoleReady(`${banner}web1 log[    9.1] msg\r\n`)).toBeUndefined();
    expect(consoleReady('[  OK  ] Started systemd-logind.service - User Login Management.\r\n')).toBeUndefined();
    expect(consoleReady('Starting getty... the login: prompt follows\n')).toBeUndefined();
    expect(consoleReady('')).toBeUndefined();
  });

  it('withoutKernelMessages keeps everything else as written', () => {
    expect(withoutKernelMessages('a\n[    1.000000] x y\nb\n[  OK  ] Reached target\n')).toBe('a\nb\n[  OK  ] Reached target\n');
  });
});

describe('consoleReady with --ready REGEX', () => {
  it('matches in the console without kernel messages, else as written; trimmed', () => {
    expect(consoleReady('boot\nREADY[   5.1] virtio: x\n now\n', /READY now$/m)).toBe('READY now');
    expect(consoleReady('[    5.100000] virtio_net virtio0 eth0: renamed\n', /virtio_net \S+ eth0/)).toBe('virtio_net virtio0 eth0');
    expect(consoleReady('web1 login: [ 1.0] x\n', /login: *$/m)).toBe('login:');
    expect(consoleReady('booting\n', /READY/)).toBeUndefined();
    // Lookaheads only (every marker somewhere, in any order): an empty match is ready.
    const all = /^(?=[^]*GOS-TEST host=a)(?=[^]*a login:)/;
    expect(consoleReady('GOS-TEST host=a\n[ 9.0] x\na login: ', all)).toBe('');
    expect(consoleReady('GOS-TEST host=a\n', all)).toBeUndefined();
  });

  it('a global pattern gives the same answer every time (its lastIndex is not used)', () => {
    const re = /GOS-READY/g;
    for (let i = 0; i < 3; i++) expect(consoleReady('x GOS-READY y', re)).toBe('GOS-READY');
  });
});
