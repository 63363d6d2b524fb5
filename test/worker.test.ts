/**
 * The worker: one plan from (before, after, what is on disk) for new, maintenance and upgrade,
 * with one record builder. The same disk, planned with each kind of "before".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { editable } from '../src/definition/maintain';
import { readDefinition } from '../src/definition/model';
import { Provenance, parseProvenance, sha256 } from '../src/definition/provenance';
import { loadTemplate, renderTemplate, variantSettings } from '../src/definition/templates';
import { templateVersion } from '../src/definition/upgrade-record';
import { Work, work } from '../src/definition/worker';
import { newDefinitionInProcess, read, tempDir } from './helpers/cli';

let parent: string;
beforeEach(() => {
  parent = tempDir('worker');
});
afterEach(() => fs.rmSync(parent, { recursive: true, force: true }));

const newDef = (name: string): Promise<string> => newDefinitionInProcess(parent, name, { template: 'blank' });

const recordOf = (plan: { ops: { path: string; content?: string }[] }) => parseProvenance(plan.ops.find((o) => o.path === '.ganeti-os.json')!.content!)!;
const kinds = (plan: { ops: { path: string; kind: string }[] }) => Object.fromEntries(plan.ops.map((o) => [o.path, o.kind]));

describe('the worker', () => {
  it('new (nothing before): every file rendered is created, and the record holds each one as written', () => {
    const t = loadTemplate('blank');
    const spec = { name: 'fresh', template: 'blank', apiVersions: [20, 15, 10], variants: [{ name: 'default', settings: variantSettings(t, 'default') }], parameters: [] };
    const root = path.join(parent, 'fresh');
    const { plan } = work({ root, template: t, spec, before: 'nothing' });
    const rendered = renderTemplate(t, spec);
    expect(kinds(plan)).toEqual({ ...Object.fromEntries(rendered.map((f) => [f.path, 'create'])), '.ganeti-os.json': 'create' });
    const rec = recordOf(plan);
    for (const f of rendered) {
      expect([f.path, rec.files[f.path].sha256, rec.base![f.path]]).toEqual([f.path, sha256(f.content), f.content]);
    }
    expect(rec.templateVersion).toBe(templateVersion(t));
  });

  it('the same edited file: new refuses it, maintenance leaves it alone unless the change affects it, upgrade merges it', async () => {
    const d = await newDef('edited');
    const l = editable(readDefinition(d));
    const steps = path.join(d, 'lib', 'steps.sh');
    fs.appendFileSync(steps, '# the admin was here\n');
    const readme = path.join(d, 'README.md');
    fs.appendFileSync(readme, 'Site notes.\n');

    // new into the directory (as new --force would, were it not a definition): the edited files are in the way.
    const asNew = work({ root: d, template: l.template!, spec: l.spec!, before: 'nothing' });
    expect(asNew.plan.ops.find((o) => o.path === 'lib/steps.sh')).toMatchObject({ kind: 'conflict', reason: 'not written by ganeti-os' });

    // maintenance with the same answers: nothing is affected, so nothing but the record is planned.
    const same: Work = { root: d, template: l.template!, spec: l.spec!, previous: l.provenance, before: { answers: l.spec! } };
    expect(work(same).plan.ops.filter((o) => o.kind !== 'identical').map((o) => o.path)).toEqual([]);

    // maintenance whose change affects the README: the edited documentation is kept with a note.
    const more = { ...l.spec!, variants: [...l.spec!.variants, { name: 'extra', settings: variantSettings(l.template!, 'extra') }] };
    const changed = work({ ...same, spec: more });
    expect(kinds(changed.plan)).toMatchObject({ 'variants/extra.conf': 'create' });
    expect(kinds(changed.plan)['README.md']).toBeUndefined();
    expect(changed.plan.notes.join('\n')).toMatch(/Kept README\.md as you edited it/);
    expect(kinds(changed.plan)['lib/steps.sh']).toBeUndefined();

    // upgrade after the template's lib/steps.sh changed: the admin's line and the template's merge.
    const prov = JSON.parse(read(path.join(d, '.ganeti-os.json'))) as Provenance;
    const oldSteps = prov.base!['lib/steps.sh'].replace(/^# /m, '# (older) ');
    const aged: Provenance = { ...prov, base: { ...prov.base, 'lib/steps.sh': oldSteps } };
    fs.writeFileSync(steps, oldSteps + '# the admin was here\n');
    const up = work({ root: d, template: l.template!, spec: l.spec!, previous: aged, before: 'recorded' });
    const now = renderTemplate(l.template!, l.spec!).find((f) => f.path === 'lib/steps.sh')!.content;
    expect(up.files.find((f) => f.path === 'lib/steps.sh')).toMatchObject({ outcome: 'merged', after: now + '# the admin was here\n' });
    // The record holds the template's text, so the admin's line still shows as theirs.
    expect(recordOf(up.plan).files['lib/steps.sh'].sha256).toBe(sha256(now));
    expect(recordOf(up.plan).templateVersion).toBe(templateVersion(l.template!));
  });

  it('maintenance keeps the template version the definition has; only new and upgrade move it', async () => {
    const d = await newDef('version');
    const l = editable(readDefinition(d));
    const prov: Provenance = { ...l.provenance!, templateVersion: 'older' };
    const maint = work({ root: d, template: l.template!, spec: l.spec!, previous: prov, before: { answers: l.spec! } });
    expect(recordOf(maint.plan).templateVersion).toBe('older');
    const up = work({ root: d, template: l.template!, spec: l.spec!, previous: prov, before: 'recorded' });
    expect(recordOf(up.plan).templateVersion).toBe(templateVersion(l.template!));
  });
});
