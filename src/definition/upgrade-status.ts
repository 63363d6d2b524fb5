/** What `info` says about a definition's template: the version it was written with, and whether `upgrade` has something to bring. */
import type { Provenance } from './provenance';
import { loadTemplate } from './templates';
import { pendingTemplateChanges } from './upgrade';
import { templateVersion } from './upgrade-record';

export interface TemplateStatus {
  template: string;
  /** The template version the definition was written with (null: before versions were recorded). */
  writtenWith: string | null;
  /** This ganeti-os's version of that template (null: it does not have the template). */
  current: string | null;
  /** Whether `ganeti-os upgrade` would change files of the template's. */
  upgradeAvailable: boolean;
  /** Those files. */
  changes: string[];
  summary: string;
}

/**
 * The template status of a definition from its record alone (the disk is not compared: the
 * admin's edits do not make an upgrade available). Never throws: a template this ganeti-os
 * lacks or cannot render is reported in `summary`.
 */
export function templateStatus(prov: Provenance): TemplateStatus {
  const writtenWith = prov.templateVersion ?? null;
  const was = writtenWith ?? 'version not recorded (written before ganeti-os recorded it)';
  const site = prov.templateSource;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const src = site ? (require('./template-source') as typeof import('./template-source')) : undefined;
  const from = site && src ? ` (site template ${src.describeSource(site)}${site.version !== undefined ? ` version ${site.version}` : ''}${site.commit ? ` at ${site.commit.slice(0, 12)}` : ''})` : '';
  if (site?.kind === 'git') {
    // info does not fetch: the repository may be far away, or need credentials.
    return { template: prov.template, writtenWith, current: null, upgradeAvailable: false, changes: [], summary: `${prov.template} ${was}${from}; 'ganeti-os upgrade --dry-run' fetches it and shows what would change` };
  }
  try {
    const t = site && src ? src.loadTemplateDir(site.location, site) : loadTemplate(prov.template);
    const current = templateVersion(t);
    const changes = pendingTemplateChanges(prov, t);
    const upgradeAvailable = changes.length > 0;
    const summary = upgradeAvailable
      ? `${prov.template} ${was}${from}; upgrade available to ${current} (${changes.length} file${changes.length === 1 ? '' : 's'}: ganeti-os upgrade)`
      : `${prov.template} ${was}${from}; up to date${writtenWith === current ? '' : ` (renders as ${current} does)`}`;
    return { template: prov.template, writtenWith, current, upgradeAvailable, changes, summary };
  } catch (err) {
    const why = site ? `the template cannot be loaded: ${err instanceof Error ? err.message : String(err)}` : 'this ganeti-os does not have that template';
    return { template: prov.template, writtenWith, current: null, upgradeAvailable: false, changes: [], summary: `${prov.template} ${was}${from}; ${why}` };
  }
}
