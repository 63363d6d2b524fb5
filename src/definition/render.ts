/**
 * From answers to a plan: render the template, compare with what is on disk, and add the
 * provenance record. Every command that (re)generates files goes through `planDefinition`.
 */
import type { Context } from '../context';
import { recoverInterrupted } from './writer';
import { Plan, PlanOp, planDelete, planWrite } from './plan';
import { PROVENANCE_FILE, PROVENANCE_SCHEMA, Provenance, ProvenanceFile, formatMode, formatProvenance, sha256 } from './provenance';
import { toolVersion } from '../paths';
import type { DefinitionSpec } from './spec';
import { RenderedFile, Template, renderTemplate } from './templates';
import { baseRender, templateParameters, templateVariants, templateVersion } from './upgrade-record';

export interface PlanDefinitionOptions {
  force?: boolean;
  previous?: Provenance;
  /** Only these paths are (re)written; others the template renders are left alone. Default: all. */
  only?: (file: RenderedFile) => boolean;
  /** Paths to remove (each checked against the provenance like a rewrite). */
  remove?: string[];
}

export function planDefinition(root: string, template: Template, spec: DefinitionSpec, opts: PlanDefinitionOptions = {}): Plan {
  const rendered = renderTemplate(template, spec);
  const wanted = opts.only ? rendered.filter(opts.only) : rendered;
  const ops: PlanOp[] = planWrite(root, wanted, { force: opts.force, provenance: opts.previous });
  for (const rel of opts.remove ?? []) {
    const op = planDelete(root, rel, { force: opts.force, provenance: opts.previous });
    if (op) ops.push(op);
  }
  ops.push(provenanceOp(root, template, spec, ops, opts.previous));
  return { root, ops, notes: [] };
}

/** The `.ganeti-os.json` that records `ops` on top of what `previous` recorded. */
export function provenanceOp(root: string, template: Template, spec: DefinitionSpec, ops: PlanOp[], previous?: Provenance): PlanOp {
  const files: Record<string, ProvenanceFile> = { ...(previous?.files ?? {}) };
  for (const op of ops) {
    if (op.kind === 'delete') delete files[op.path];
    else if (op.content !== undefined && op.mode !== undefined && op.owner && op.kind !== 'conflict') {
      files[op.path] = { sha256: sha256(op.content), mode: formatMode(op.mode), owner: op.owner };
    }
  }
  const record: Provenance = {
    schema: PROVENANCE_SCHEMA,
    tool: 'ganeti-os',
    version: toolVersion(),
    template: template.manifest.name,
    answers: spec,
    files,
    // The version moves only with `new` and `upgrade`: other commands re-render single files.
    templateVersion: previous ? previous.templateVersion : templateVersion(template),
    templateParameters: previous ? previous.templateParameters : templateParameters(template),
    templateVariants: previous ? previous.templateVariants : templateVariants(template),
    base: baseRender(template, spec, ops, files, previous?.base),
  };
  const [op] = planWrite(root, [{ path: PROVENANCE_FILE, content: formatProvenance(record), mode: 0o644, owner: 'tool' }], { force: true });
  return op;
}

/**
 * Undo a write that a kill interrupted, before anything plans against the directory. Every
 * command that changes an existing definition calls this first.
 */
export function recoverBeforePlanning(ctx: Context, root: string): void {
  if (recoverInterrupted(root)) ctx.log.warn(`${root}: an earlier ganeti-os write was interrupted; its changes were rolled back`);
}
