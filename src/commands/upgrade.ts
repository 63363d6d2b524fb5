/** `ganeti-os upgrade`: bring a definition up to this ganeti-os's templates, keeping the admin's edits. */
import type { Context } from '../context';
import { UserError } from '../errors';
import { Loaded, maintainDefinition } from '../definition/maintain';
import { planToJson } from '../definition/plan';
import { FileOutcome, Outcome, UpgradePlan, upgradeDefinition } from '../definition/upgrade';
import { applyUpgrade, upgradeDiff } from '../definition/upgrade-apply';
import { readDefinition } from '../definition/model';
import { definitionDir } from './definition-dir';
import { describeSource, parseTemplateRef } from '../definition/template-source';
import type { TemplateSourceRecord } from '../definition/templates';

export interface UpgradeOptions {
  osDir?: string;
  /** Follow this template from now on: a built-in name, a directory or git+URL[#ref]. */
  template?: string;
  dryRun?: boolean;
  force?: boolean;
  json?: boolean;
}

const SHOWN: Record<Outcome, string | undefined> = {
  unchanged: undefined,
  updated: '~ updated',
  kept: undefined,
  merged: 'M merged',
  conflict: '! CONFLICT',
  created: '+ created',
  beside: '> new beside',
  removed: '- removed',
  'kept-dropped': '? kept',
  'stays-deleted': '  deleted',
  yours: undefined,
  skipped: '? skipped',
  replaced: 'R replaced',
};

function line(f: FileOutcome): string | undefined {
  const tag = SHOWN[f.outcome] ?? (f.mode ? '~ mode' : undefined);
  if (!tag) return undefined;
  const extra: string[] = [];
  if (f.outcome === 'conflict') extra.push(`${f.conflicts} conflict${f.conflicts === 1 ? '' : 's'}: resolve the <<<<<<< ||||||| ======= >>>>>>> blocks`);
  if (f.outcome === 'beside') extra.push(`you edited ${f.path}: merge ${f.beside} into it by hand, then delete ${f.beside}`);
  if (f.outcome === 'stays-deleted') extra.push('you deleted it: it stays deleted');
  if (f.detail) extra.push(f.detail);
  if (f.mode) extra.push(`mode ${f.mode.from} → ${f.mode.to}`);
  return `  ${tag.padEnd(13)} ${f.outcome === 'beside' ? f.beside : f.path}${extra.length ? `  (${extra.join('; ')})` : ''}`;
}

function summaryText(up: UpgradePlan, dryRun: boolean, backup?: string): string {
  const lines = up.files.map(line).filter((l): l is string => !!l);
  for (const f of up.files) {
    for (const s of f.newSettings ?? []) lines.push(`  * new setting  ${f.path}: ${s.key} (the template has: ${s.line.trim()})`);
  }
  const from = up.from ? up.from : up.fromRelease ? `of the ${up.fromRelease} release` : 'a version before ganeti-os recorded template versions';
  const head =
    !lines.length && up.from === up.to
      ? `${up.plan.root} is up to date with template ${up.template} ${up.to}`
      : `${dryRun ? 'Would upgrade' : 'Upgraded'} ${up.plan.root}: template ${up.template} ${from} → ${up.to}`;
  const tail = [...up.notes.map((n) => `  note: ${n}`)];
  if (backup) tail.push(`Replaced files were backed up in ${backup}`);
  const upToDate = !lines.length && up.from === up.to;
  return [head, ...(lines.length || upToDate ? lines : ['  (no file changes)']), ...tail].join('\n') + '\n';
}

/**
 * Upgrade the definition in --os-dir (or the current directory) as a maintenance command: under
 * the definition's lock, after rolling back an interrupted write, so an upgrade and another
 * command on the same definition serialise. Throws UserError on conflicts (written, exit 1).
 */
export async function runUpgrade(ctx: Context, opts: UpgradeOptions): Promise<void> {
  // The template the definition follows as it is now (a site template's directory, its ref's
  // new head), or the one --template names.
  const templateRef = opts.template !== undefined ? parseTemplateRef(opts.template, ctx.cwd) : undefined;
  await maintainDefinition(ctx, { ...opts, osDir: definitionDir(ctx, opts.osDir), templateAt: 'latest', templateRef }, (l) => upgradeLoaded(ctx, l, opts));
}

/** Where the template comes from, for the summary: "site template from DIR (version 2, commit abc)", a change of template. */
function sourceNotes(l: Loaded): string[] {
  const s = l.template?.source;
  const prev = l.provenance;
  const out: string[] = [];
  const what = (name: string, src: TemplateSourceRecord | undefined) =>
    src ? `${name} from ${describeSource(src)}${src.version ? ` version ${src.version}` : ''}${src.commit ? ` (commit ${src.commit.slice(0, 12)})` : ''}` : `${name} (built into ganeti-os)`;
  if (!l.template || !prev) return out;
  const before = prev.templateSource;
  const same = prev.template === l.template.manifest.name && before?.kind === s?.kind && before?.location === s?.location && before?.ref === s?.ref && before?.subdir === s?.subdir;
  if (!same) out.push(`The definition now follows template ${what(l.template.manifest.name, s)}; it followed ${what(prev.template, before)}.`);
  else if (s) out.push(`Template ${what(l.template.manifest.name, s)}${before?.version !== undefined && before.version !== s.version ? `; was version ${before.version}` : ''}${before?.commit && before.commit !== s.commit ? `; was commit ${before.commit.slice(0, 12)}` : ''}.`);
  return out;
}

function upgradeLoaded(ctx: Context, l: Loaded, opts: UpgradeOptions): void {
  const up = upgradeDefinition(l, { force: opts.force });
  up.notes.unshift(...sourceNotes(l));
  const backup = opts.dryRun ? undefined : applyUpgrade(up);
  if (opts.json) {
    const doc = {
      ...planToJson(up.plan, !opts.dryRun),
      command: 'upgrade',
      template: up.template,
      ...(l.template?.source ? { templateSource: l.template.source } : {}),
      from: up.from ?? null,
      to: up.to,
      files: up.files.map(({ before: _b, after: _a, ...rest }) => rest),
      conflicts: up.conflicted,
      unmerged: up.unmerged,
      backup: backup ?? null,
      ...(opts.dryRun ? { diff: upgradeDiff(up) } : {}),
    };
    ctx.out.write(JSON.stringify(doc, null, 2) + '\n');
  } else {
    ctx.out.write(summaryText(up, !!opts.dryRun, backup));
    if (opts.dryRun) ctx.out.write(upgradeDiff(up));
  }
  if (!opts.dryRun) {
    const def = readDefinition(l.root);
    if (!def.verdict.valid) ctx.log.warn(`Ganeti would not accept ${l.root} as it is now: ${def.verdict.error}`);
  }
  if (up.unmerged.length && !up.conflicted.length) {
    throw new UserError(
      `${up.unmerged.length === 1 ? 'a file you edited was' : `${up.unmerged.length} files you edited were`} not merged: ganeti-os does not know the text the template wrote there, so the template's new version ${opts.dryRun ? 'would be' : 'is'} beside yours`,
      [
        ...up.unmerged.map((u) => `  ${u.path} (new: ${u.beside})`),
        opts.dryRun ? 'Nothing was changed (dry run).' : 'Merge each new version into your file by hand, then delete the .ganeti-os-new file; validate and pack refuse the definition until then.',
      ],
    );
  }
  if (up.conflicted.length) {
    throw new UserError(
      `${up.conflicted.length === 1 ? 'a file has' : `${up.conflicted.length} files have`} conflicts ${opts.dryRun ? 'the upgrade would write' : 'marked in it'}: the template and you changed the same lines`,
      [...up.conflicted.map((p) => `  ${p}`), ...up.unmerged.map((u) => `  ${u.path} (not merged: the new version is ${u.beside})`), opts.dryRun ? 'Nothing was changed (dry run).' : 'Edit them to keep what you want and remove the markers; validate and pack refuse them until then.'],
    );
  }
}
