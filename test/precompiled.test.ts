/**
 * The build precompiles every templates/**\/*.hbs (scripts/precompile-templates.js) so that the
 * built CLI renders with the Handlebars runtime only. The precompiled output must render exactly
 * what compiling the source renders, and must be current for every source.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Handlebars from 'handlebars';
import HandlebarsRuntime from 'handlebars/runtime';

const ROOT = path.resolve(__dirname, '..');
const TEMPLATES = path.join(ROOT, 'templates');
const PRECOMPILED = path.join(ROOT, 'dist', 'templates.precompiled.js');

function hbsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? hbsFiles(p) : e.name.endsWith('.hbs') ? [p] : [];
  });
}

const table = (): Record<string, { sha256: string; spec: unknown }> => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(PRECOMPILED);
};

describe('precompiled templates (dist/templates.precompiled.js, written by npm run build)', () => {
  it('exists after the build and holds every .hbs source, current', () => {
    expect(fs.existsSync(PRECOMPILED)).toBe(true);
    const t = table();
    const sources = hbsFiles(TEMPLATES);
    expect(sources.length).toBeGreaterThan(0);
    for (const file of sources) {
      const key = path.relative(TEMPLATES, file).split(path.sep).join('/');
      const sha = crypto.createHash('sha256').update(fs.readFileSync(file, 'utf8')).digest('hex');
      expect({ key, sha256: t[key]?.sha256 }).toEqual({ key, sha256: sha });
    }
  });

  it('renders exactly what compiling the source renders', () => {
    const t = table();
    const data = {
      name: 'demo-os',
      script: 'create',
      template: 'blank',
      summary: `a <summary> & "quotes" it's`,
      toolVersion: '9.9.9',
      apiVersions: [20, 15, 10],
      maxApi: 20,
      hasVariants: true,
      hasParameters: true,
      api20: true,
      variants: [{ name: 'default', isDefault: true, settingsList: [{ key: 'SUITE', value: 'bookworm' }] }],
      defaultVariant: 'default',
      parameters: [{ name: 'root-size', description: 'size', env: 'OSP_ROOT_SIZE', default: '1G', choicesText: undefined }],
      variantKeys: [{ key: 'SUITE', description: 'release', default: '{variant}' }],
    };
    const helpers = (hb: typeof Handlebars) => {
      hb.registerHelper('shq', (s: unknown) => `'${String(s).replace(/'/g, "'\\''")}'`);
      hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
      hb.registerHelper('join', (a: unknown, sep: unknown) => (Array.isArray(a) ? a.join(typeof sep === 'string' ? sep : ', ') : ''));
      return hb;
    };
    const full = helpers(Handlebars.create());
    const runtime = helpers((HandlebarsRuntime as unknown as typeof Handlebars).create());
    for (const file of hbsFiles(TEMPLATES)) {
      const key = path.relative(TEMPLATES, file).split(path.sep).join('/');
      const compiled = full.compile(fs.readFileSync(file, 'utf8'), { noEscape: true, strict: false })(data);
      const pre = runtime.template(t[key].spec as never)(data);
      expect({ key, text: pre }).toEqual({ key, text: compiled });
    }
  });
});
