/**
 * Removing a variant (`ganeti-os remove-variant`): its line in variants.list and its
 * configuration (kept when the admin edited it, unless forced).
 */
import * as path from 'node:path';
import { UserError } from '../../errors';
import { OS_VARIANTS_FILE } from '../../ganeti/rules';
import { Edit, Loaded, maintenance, facts, foreignVariantsDir, planPath, readText, removeVariantLine, symlinkNote, symlinkedListEdit } from '../maintain';
import { textOp, work } from '../worker';
import { Plan, PlanOp } from '../plan';
import type { DefinitionSpec } from '../spec';

export interface RemoveVariantEdit {
  variant: string;
  force?: boolean;
}

/**
 * Remove variant `opts.variant` from the loaded definition `l`. Returns the plan; writes nothing.
 * Throws UserError (nothing changed) when it has no such variant or it is the only one.
 */
export function removeVariant(l: Loaded, opts: RemoveVariantEdit): Edit {
  const v = opts.variant;
  if (!l.variantsFile.exists) throw new UserError(`${l.name} has no variants.list, so no variant '${v}'; nothing was changed`);
  if (!l.variants.includes(v)) {
    throw new UserError(`${l.name} has no variant '${v}'; nothing was changed`, [`Its variants: ${l.variants.join(', ') || '(none)'}`]);
  }
  const names = l.variants.filter((n) => n !== v);
  if (!names.length) {
    throw new UserError(`'${v}' is the only variant of ${l.name}: a definition with variants.list needs at least one; nothing was changed`, [
      'Add another variant first (ganeti-os add-variant NAME): Ganeti needs a variant to install with.',
    ]);
  }
  const outside = symlinkedListEdit(l, 'remove-variant', opts.force);
  const { text } = removeVariantLine(l.variantsFile.text, v);
  let plan: Plan;
  if (l.provenance) {
    const spec: DefinitionSpec = { ...l.spec!, variants: l.spec!.variants.filter((x) => x.name !== v) };
    plan = work(maintenance(l, spec, { force: opts.force, variantsText: text })).plan;
  } else {
    const ops: PlanOp[] = [textOp(OS_VARIANTS_FILE, l.variantsFile, text)];
    const notes: string[] = [];
    const dir = foreignVariantsDir(l);
    const abs = dir ? path.join(dir, `${v}.conf`) : undefined;
    const conf = abs ? readText(abs) : undefined;
    if (abs && conf?.exists) {
      if (opts.force) ops.push({ path: planPath(l.root, abs), kind: 'delete', realPath: abs });
      else notes.push(`Kept ${abs}: without a .ganeti-os.json, ganeti-os cannot tell whether it holds your settings. Remove it by hand, or run again with --force.`);
    }
    plan = { root: l.root, ops, notes };
  }
  const note = outside ? undefined : symlinkNote(l.variantsFile);
  if (note) plan.notes.unshift(note);
  if (l.variants[0] === v) plan.notes.push(`'${names[0]}' is now the default variant (the first in variants.list).`);
  return {
    plan,
    summary: `Removed variant '${v}' from ${l.name} (variants: ${names.join(', ')})`,
    facts: { command: 'remove-variant', variant: v, ...facts(l, l.apiVersions, names, l.parameters.map((p) => p.name)) },
    warnings: outside ? [outside] : [],
  };
}
