'use strict';
/**
 * Build step after tsc: the parser (dist/cli.js with commander) and each everyday command's
 * module, each with everything it loads (our modules, Handlebars' runtime, the precompiled
 * templates, diff, node-diff3, fs-extra) in one file, dist/bundles/<name>.js, which main.js
 * loads instead of dist/cli.js or dist/commands/<name>.js when it is there. One file instead of
 * 40-80 saves most of the time Node spends resolving, reading and wrapping modules (issue 25:
 * everyday commands as quick as Node itself starts).
 *
 * Not bundled (left as require() of the files tsc wrote): what main.js itself also loads
 * (errors, paths, prompter: one copy of each, so `instanceof GanetiOsError` holds) and what only
 * rare paths load (Handlebars' compiler, for a template changed since the build; @inquirer).
 * dist/bundles/<name>.js itself is a stub that loads <name>.bundle.js through V8's code cache
 * (src/code-cache.ts): a command run again does not compile its code again.
 *
 * Without esbuild (a build without dev dependencies) nothing is bundled and main.js loads the
 * modules one by one, as before.
 */
const fs = require('node:fs');
const path = require('node:path');

/** Commands bundled: the everyday ones (issue 25). */
const COMMANDS = ['new', 'info', 'validate', 'diagnose', 'add-variant', 'remove-variant', 'add-param', 'remove-param', 'bump-api', 'upgrade'];
/** dist modules main.js shares with the commands: required, never copied into a bundle. */
const SHARED = ['errors', 'paths', 'prompter', 'context', 'main', 'index', 'code-cache'];
/** Packages only rare paths load. */
const EXTERNAL_PACKAGES = ['handlebars', '@inquirer/prompts'];

const dist = path.join(__dirname, '..', 'dist');
const out = path.join(dist, 'bundles');

let esbuild;
try {
  esbuild = require('esbuild');
} catch {
  console.error('bundle: esbuild is not installed: commands load module by module');
  process.exit(0);
}

const shared = {
  name: 'shared-with-main',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      if (EXTERNAL_PACKAGES.includes(args.path)) return { path: args.path, external: true };
      if (!args.path.startsWith('.')) return undefined;
      const abs = path.resolve(args.resolveDir, args.path).replace(/\.js$/, '');
      const rel = path.relative(dist, abs);
      if (SHARED.includes(rel)) return { path: `../${rel}.js`, external: true };
      return undefined;
    });
  },
};

fs.rmSync(out, { recursive: true, force: true });
esbuild
  .build({
    entryPoints: { cli: path.join(dist, 'cli.js'), ...Object.fromEntries(COMMANDS.map((c) => [c, path.join(dist, 'commands', `${c}.js`)])) },
    entryNames: '[name].bundle',
    outdir: out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    plugins: [shared],
    logLevel: 'warning',
    legalComments: 'inline',
  })
  .then(() => {
    // What main.js requires: a stub that loads the bundle with V8's code cache (src/code-cache.ts).
    for (const name of ['cli', ...COMMANDS]) {
      const stub = `'use strict';\nmodule.exports = require('../code-cache.js').requireWithCodeCache(require('node:path').join(__dirname, '${name}.bundle.js'), module);\n`;
      fs.writeFileSync(path.join(out, `${name}.js`), stub);
    }
  })
  .catch((err) => {
    console.error(`bundle: ${err.message}`);
    process.exit(1);
  });
