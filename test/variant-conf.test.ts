/** variants/<v>.conf: unset settings stay commented so the site's layers still apply. */
import { runSync } from '../src/system/process';
import { setConfValues } from '../src/definition/maintain';
import { loadTemplate, renderVariantConf, variantSettings } from '../src/definition/templates';

const t = loadTemplate('debian');
const spec = { name: 'deb', template: 'debian', apiVersions: [20, 15, 10], variants: [], parameters: [] };

describe('variant configuration files', () => {
  const conf = renderVariantConf(t, spec, { name: 'trixie', settings: variantSettings(t, 'trixie') });

  it('writes set keys as assignments and empty ones commented out', () => {
    expect(conf).toMatch(/^SUITE=trixie$/m);
    expect(conf).toMatch(/^# MIRROR=$/m);
  });

  it('lets a site-wide value through when the variant leaves the key unset, and wins when it sets it', () => {
    const read = (variantConf: string) =>
      runSync(['bash', '-c', 'MIRROR=http://site.invalid/debian; eval "$1"; printf %s "$MIRROR"', 'bash', variantConf]).stdout;
    expect(read(conf)).toBe('http://site.invalid/debian');
    const set = setConfValues(conf, { MIRROR: 'http://variant.invalid/ubuntu' });
    expect(read(set)).toBe('http://variant.invalid/ubuntu');
    // The commented line was filled in, not a second one appended.
    expect(set.match(/MIRROR=/g)).toHaveLength(1);
    expect(set).toMatch(/^# Archive URL.*\nMIRROR=http:\/\/variant\.invalid\/ubuntu$/m);
  });
});
