/**
 * The line-based three-way merge `upgrade` runs on a file both the admin and the template
 * changed: node-diff3 on arrays of lines (never its string mode, which splits on whitespace),
 * conflicts written with git's markers in its diff3 style (`git merge-file --diff3`), so the
 * admin sees their lines, the old template's and the new one's.
 */

/** What node-diff3's diff3Merge returns (its types are not visible to our CommonJS resolution). */
type Diff3Region = { ok: string[]; conflict?: undefined } | { ok?: undefined; conflict: { a: string[]; o: string[]; b: string[] } };
type Diff3Merge = (a: string[], o: string[], b: string[], opts?: { excludeFalseConflicts?: boolean }) => Diff3Region[];

let diff3Merge: Diff3Merge | undefined;
function engine(): Diff3Merge {
  // Loaded on demand: only upgrade needs it. Its CommonJS build (dist/diff3.cjs) via "exports".
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (!diff3Merge) diff3Merge = (require('node-diff3') as { diff3Merge: Diff3Merge }).diff3Merge;
  return diff3Merge;
}

export interface MergeLabels {
  /** The file on disk (the admin's). */
  current: string;
  /** What the template rendered when ganeti-os last wrote it. */
  base: string;
  /** What the template renders now. */
  next: string;
}

export interface MergeResult {
  text: string;
  /** Number of conflict blocks written with markers (0: a clean merge). */
  conflicts: number;
}

/**
 * Where `upgrade` puts the template's new version of a file it cannot merge (an edited file
 * without a known base): `<file>.ganeti-os-new`, beside it. validate, pack and rollout refuse a
 * definition holding one, as they refuse conflict markers.
 */
export const BESIDE_SUFFIX = '.ganeti-os-new';

export const CONFLICT_MARKERS = { current: '<<<<<<<', base: '|||||||', separator: '=======', next: '>>>>>>>' } as const;

/** Lines with their terminators ("a\nb" → ["a\n", "b"]), so a missing last newline survives. */
export function textLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

function block(lines: string[]): string {
  const s = lines.join('');
  return s === '' || s.endsWith('\n') ? s : s + '\n';
}

/**
 * Merge the admin's `current` and the template's `next`, both descended from `base`. Changes
 * on one side only are taken; the same change on both sides once; overlapping different
 * changes become a conflict block:
 *
 *     <<<<<<< labels.current / lines on disk / ||||||| labels.base / base lines /
 *     ======= / new lines / >>>>>>> labels.next
 *
 * Pure; text in, text out.
 */
export function merge3(current: string, base: string, next: string, labels: MergeLabels): MergeResult {
  if (current === next) return { text: current, conflicts: 0 };
  if (current === base) return { text: next, conflicts: 0 };
  if (next === base) return { text: current, conflicts: 0 };
  const regions = engine()(textLines(current), textLines(base), textLines(next), { excludeFalseConflicts: true });
  let text = '';
  let conflicts = 0;
  for (const r of regions) {
    if (r.ok) {
      text += r.ok.join('');
      continue;
    }
    conflicts++;
    const c = r.conflict!;
    text +=
      `${CONFLICT_MARKERS.current} ${labels.current}\n${block(c.a)}` +
      `${CONFLICT_MARKERS.base} ${labels.base}\n${block(c.o)}` +
      `${CONFLICT_MARKERS.separator}\n${block(c.b)}` +
      `${CONFLICT_MARKERS.next} ${labels.next}\n`;
  }
  return { text, conflicts };
}

/**
 * The marker lines of every merge-conflict block in `text`, as git (`merge-file`, `--diff3`)
 * and `upgrade`'s merge write them: a `<<<<<<<` line, later a `>>>>>>>` line, and the
 * `|||||||` and `=======` lines between. A lone `=======` (a Markdown underline) or an unclosed
 * `<<<<<<<` is no conflict. Lines are 1-based. The one test for conflict markers: validate,
 * pack and upgrade all use it.
 */
export function conflictMarkerLines(text: string): { line: number; text: string }[] {
  // Every block opens with a '<<<<<<<' line: without one, no line needs testing.
  if (!text.includes('<<<<<<<')) return [];
  const lines = text.split(/\r?\n/);
  const out: { line: number; text: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^<{7}(?: |$)/.test(lines[i])) continue;
    let end = i + 1;
    while (end < lines.length && !/^>{7}(?: |$)/.test(lines[end])) end++;
    if (end === lines.length) break;
    for (let k = i; k <= end; k++) {
      if (/^(?:<{7}|\|{7}|>{7})(?: |$)/.test(lines[k]) || /^={7}$/.test(lines[k])) out.push({ line: k + 1, text: lines[k] });
    }
    i = end;
  }
  return out;
}

/** Whether `text` holds a merge-conflict block (see conflictMarkerLines). */
export function hasConflictMarkers(text: string): boolean {
  return conflictMarkerLines(text).length > 0;
}
