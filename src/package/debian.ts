/**
 * Debian's rules for the .deb of an OS definition: package names, versions, and the text of
 * DEBIAN/control, the changelog and the copyright file. Follows Debian Policy §5.6 (control
 * fields), §4.4 / deb-changelog(5) (changelog), the copyright-format 1.0 (DEP-5), and dpkg's own
 * version comparison (`dpkg --compare-versions`).
 */
import { UsageError, UserError } from '../errors';

/** Where a packaged definition lives on the node: last in Ganeti's search path on Debian. */
export const PACKAGED_OS_ROOT = '/usr/share/ganeti/os';

const PACKAGE_NAME_RE = /^[a-z0-9][a-z0-9+.-]+$/;
/** A native version (no Debian revision: the definition is its own upstream), optional epoch. */
const VERSION_RE = /^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~]*$/;

/**
 * The package name for OS `name`: `ganeti-os-` + the name. Ganeti allows [A-Za-z0-9_-] in OS
 * names, Debian only [a-z0-9+.-] in package names, so a name with `_` or upper case has no package
 * name of its own: lower-casing it and writing `_` as `-` would give `a_b`, `A-b` and `a-b` one
 * package, and installing one of them would remove the others' OS directories (dpkg replaces a
 * package's files with the new version's). An escaped mapping would rename packages already
 * released for such names, leaving two packages owning one directory; so such a name is refused,
 * naming the package it would share and the OS name that owns it.
 */
export function packageName(osName: string): string {
  const p = `ganeti-os-${osName.toLowerCase().replace(/_/g, '-')}`;
  if (!PACKAGE_NAME_RE.test(p)) throw new UserError(`cannot make a Debian package name from the OS name '${osName}'`);
  const owner = p.slice('ganeti-os-'.length);
  if (owner !== osName) {
    throw new UserError(
      `cannot pack OS '${osName}': its package name would be '${p}', which is also the package of OS '${owner}' (Debian package names have no '_' and no upper case); installing one of the two would remove the other's OS directory (${PACKAGED_OS_ROOT}/${osName} or ${PACKAGED_OS_ROOT}/${owner})`,
      [`rename the definition to '${owner}' (its directory and the name in its files) to pack it as '${p}'`],
    );
  }
  return p;
}

/**
 * Throws a UsageError unless `v` is a native Debian version (Policy §5.6.12 without a
 * revision: `[epoch:]upstream`, upstream starting with a digit, made of [A-Za-z0-9.+~]).
 * A revision (`-1`) is refused: the definition is its own upstream, so the package is native.
 */
export function checkVersion(v: string): void {
  if (!VERSION_RE.test(v)) {
    throw new UsageError(`'${v}' is not a version this package can have`, [
      'a native Debian version: it starts with a digit and holds only letters, digits, ".", "+" and "~" (e.g. 1, 2.3, 2.3+site1), optionally after an epoch ("1:")',
    ]);
  }
}

/**
 * dpkg's ordering of two versions, as `dpkg --compare-versions A lt B` decides it (dpkg's
 * lib/dpkg/version.c: epoch, then upstream and revision with verrevcmp): true when a < b.
 */
export function versionLessThan(a: string, b: string): boolean {
  return compareVersions(a, b) < 0;
}

/** dpkg's version comparison: negative, zero or positive. */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => {
    const colon = v.indexOf(':');
    const epoch = colon >= 0 ? Number(v.slice(0, colon)) : 0;
    const rest = colon >= 0 ? v.slice(colon + 1) : v;
    const dash = rest.lastIndexOf('-');
    return { epoch, upstream: dash >= 0 ? rest.slice(0, dash) : rest, revision: dash >= 0 ? rest.slice(dash + 1) : '' };
  };
  const x = split(a);
  const y = split(b);
  if (x.epoch !== y.epoch) return x.epoch - y.epoch;
  return verrevcmp(x.upstream, y.upstream) || verrevcmp(x.revision, y.revision);
}

/** dpkg's order of one character: '~' before everything, even the end; letters before the rest. */
function order(c: string | undefined): number {
  if (c === undefined) return 0;
  if (/[0-9]/.test(c)) return 0;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  if (c === '~') return -1;
  return c.charCodeAt(0) + 256;
}

function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !/[0-9]/.test(a[i])) || (j < b.length && !/[0-9]/.test(b[j]))) {
      const ac = order(a[i]);
      const bc = order(b[j]);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    while (i < a.length && /[0-9]/.test(a[i]) && j < b.length && /[0-9]/.test(b[j])) {
      if (!firstDiff) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (i < a.length && /[0-9]/.test(a[i])) return 1;
    if (j < b.length && /[0-9]/.test(b[j])) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

/**
 * The next version after `v`: its last number plus one (1 -> 2, 1.9 -> 1.10, 2.3+site1 -> 2.3+site2).
 * Only a suggestion for messages; the caller still compares with versionLessThan.
 */
export function nextVersion(v: string): string {
  const m = /^(.*?)(\d+)([^\d]*)$/.exec(v);
  if (!m) return `${v}.1`;
  return `${m[1]}${BigInt(m[2]) + 1n}${m[3]}`;
}

/** "Name <address>", as Policy §5.6.2 wants the Maintainer field. Throws a UsageError otherwise. */
export function checkMaintainer(m: string): void {
  if (!/^[^<>,\n]+ <[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+>$/.test(m) || /@localhost[>.]/.test(m)) {
    throw new UsageError(`--maintainer '${m}' is not "Full Name <address@domain.example>"`, [
      'Debian wants a real, non-local mail address here (lintian: maintainer-address-malformed / -is-on-localhost)',
    ]);
  }
}

/** RFC 2822 date in UTC, as deb-changelog(5) wants it: "Mon, 30 Nov 2026 09:35:55 +0000". */
export function rfc2822(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

export interface ControlFields {
  package: string;
  version: string;
  maintainer: string;
  /** KiB, as dpkg-gencontrol computes it. */
  installedSize: number;
  depends: string[];
  suggests: string[];
  /** One line, at most 80 characters, no leading article. */
  synopsis: string;
  /** Paragraphs of the extended description (plain text, wrapped here). */
  description: string[];
}

/** DEBIAN/control for a binary package (Policy §5.3). */
export function renderControl(c: ControlFields): string {
  const lines = [
    `Package: ${c.package}`,
    `Version: ${c.version}`,
    'Architecture: all',
    `Maintainer: ${c.maintainer}`,
    `Installed-Size: ${c.installedSize}`,
  ];
  if (c.depends.length) lines.push(`Depends: ${c.depends.join(', ')}`);
  if (c.suggests.length) lines.push(`Suggests: ${c.suggests.join(', ')}`);
  lines.push('Enhances: ganeti', 'Section: admin', 'Priority: optional', `Description: ${c.synopsis}`);
  c.description.forEach((para, i) => {
    if (i > 0) lines.push(' .');
    for (const l of wrap(para, 78)) lines.push(` ${l}`);
  });
  return lines.join('\n') + '\n';
}

export interface ChangelogEntry {
  version: string;
  /** Seconds since the epoch (UTC). */
  date: number;
  maintainer: string;
  changes: string[];
}

/** A Debian changelog (deb-changelog(5)), newest entry first. */
export function renderChangelog(pkg: string, entries: ChangelogEntry[]): string {
  return entries
    .map((e) => {
      const items = e.changes.flatMap((c) => wrap(c, 76).map((l, i) => (i === 0 ? `  * ${l}` : `    ${l}`)));
      return `${pkg} (${e.version}) unstable; urgency=medium\n\n${items.join('\n')}\n\n -- ${e.maintainer}  ${rfc2822(e.date)}\n`;
    })
    .join('\n');
}

/**
 * /usr/share/doc/<package>/copyright in the machine-readable format (DEP-5). The definition's
 * files come from ganeti-os's templates, GPL-2+ like ganeti-os itself, with the site's changes.
 */
export function renderCopyright(pkg: string, osName: string, maintainer: string, year: number): string {
  return [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    `Upstream-Name: ${osName}`,
    `Comment: The Ganeti OS definition ${osName}, packaged as ${pkg} by ganeti-os from`,
    ' its templates and this site\'s changes.',
    '',
    'Files: *',
    `Copyright: ${year} ${maintainer}`,
    'License: GPL-2+',
    '',
    'License: GPL-2+',
    ' This program is free software; you can redistribute it and/or modify',
    ' it under the terms of the GNU General Public License as published by',
    ' the Free Software Foundation; either version 2 of the License, or',
    ' (at your option) any later version.',
    ' .',
    ' This program is distributed in the hope that it will be useful,',
    ' but WITHOUT ANY WARRANTY; without even the implied warranty of',
    ' MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the',
    ' GNU General Public License for more details.',
    ' .',
    ' On Debian systems, the complete text of the GNU General Public License',
    " version 2 can be found in '/usr/share/common-licenses/GPL-2'.",
    '',
  ].join('\n');
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) out.push(line);
  return out.length ? out : [''];
}
