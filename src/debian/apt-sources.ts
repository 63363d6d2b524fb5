/**
 * This node's Debian (or Ubuntu) archive, read from its apt sources at run time: ganeti-os never
 * names a mirror of its own. The same rules as the debian template's `deb_node_mirror`
 * (templates/debian/lib/debian-system.sh): one-line `sources.list`/`*.list` entries first, then
 * deb822 `*.sources` stanzas; the first `deb` source whose suite is a release itself (not a
 * security, updates, backports or proposed pocket) and whose URI is http(s), ftp or file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface AptSource {
  uri: string;
  suites: string[];
  /** The `signed-by` keyring, when the source names one. */
  signedBy?: string;
  /** The file it was read from. */
  file: string;
}

const MAIN_SUITE = (s: string): boolean => s !== '' && !s.includes('/') && !/-(security|updates|backports.*|proposed.*)$/.test(s);
const USABLE_URI = /^(https?|ftp|file):\/\//;

function readOrEmpty(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

function listFiles(aptEtc: string, ext: string): string[] {
  const dir = path.join(aptEtc, 'sources.list.d');
  try {
    return fs.readdirSync(dir).filter((f) => f.endsWith(ext)).sort().map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

/** Every `deb` source of the node, in apt's reading order (one-line files, then deb822). */
export function aptSources(aptEtc = '/etc/apt'): AptSource[] {
  const out: AptSource[] = [];
  for (const file of [path.join(aptEtc, 'sources.list'), ...listFiles(aptEtc, '.list')]) {
    for (const raw of readOrEmpty(file).split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)/.exec(line);
      if (!m) continue;
      const signed = /(?:^|\s)signed-by=(\S+)/.exec(m[1] ?? '');
      out.push({ uri: m[2], suites: [m[3]], signedBy: signed?.[1], file });
    }
  }
  for (const file of listFiles(aptEtc, '.sources')) {
    for (const stanza of readOrEmpty(file).split(/\n[ \t]*\n/)) {
      const fields = new Map<string, string>();
      for (const l of stanza.split('\n')) {
        if (l.startsWith('#')) continue;
        const m = /^([A-Za-z-]+):\s*(.*)$/.exec(l);
        if (m) fields.set(m[1].toLowerCase(), m[2].trim());
      }
      const words = (k: string): string[] => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
      if (!words('types').includes('deb')) continue;
      if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
      for (const uri of words('uris')) out.push({ uri, suites: words('suites'), signedBy: fields.get('signed-by') || undefined, file });
    }
  }
  return out;
}

/**
 * The node's main archive URL without a trailing slash (e.g. the one its bookworm packages come
 * from), or undefined when its apt sources name none. `aptEtc` is for tests.
 */
export function nodeMirror(aptEtc = '/etc/apt'): string | undefined {
  const main = aptSources(aptEtc).find((s) => USABLE_URI.test(s.uri) && s.suites.some(MAIN_SUITE));
  return main?.uri.replace(/\/+$/, '');
}
