import * as fs from 'node:fs';
import * as path from 'node:path';
import { chooseRelease, installedRelease, parseGanetiRelease } from '../src/ganeti/releases';
import { aptSources, nodeMirror } from '../src/debian/apt-sources';
import { tempDir } from './helpers/cli';

describe('Ganeti releases', () => {
  let root: string;
  beforeEach(() => {
    root = tempDir('rel');
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const install = (r: string) => {
    fs.mkdirSync(path.join(root, 'usr/share/ganeti', r, 'ganeti'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr/share/ganeti', r, 'ganeti/backend.py'), '');
  };

  it('accepts 3.0 and 3.1 and refuses others naming the supported ones', () => {
    expect(parseGanetiRelease('3.0')).toBe('3.0');
    expect(parseGanetiRelease('3.1')).toBe('3.1');
    for (const bad of ['2.16', '4', '3', '']) expect(() => parseGanetiRelease(bad)).toThrow(/supported: 3\.0, 3\.1/);
  });

  it('follows the installed release, the newest of several, else 3.1', () => {
    expect(installedRelease(root)).toBeUndefined();
    expect(chooseRelease(undefined, root)).toEqual({ release: '3.1', why: 'default' });
    install('3.0');
    expect(chooseRelease(undefined, root)).toEqual({ release: '3.0', why: 'installed' });
    install('3.1');
    expect(chooseRelease(undefined, root)).toEqual({ release: '3.1', why: 'installed' });
    expect(chooseRelease('3.0', root)).toEqual({ release: '3.0', why: 'option' });
  });
});

describe("the node's apt mirror", () => {
  let etc: string;
  beforeEach(() => {
    etc = tempDir('apt');
    fs.mkdirSync(path.join(etc, 'sources.list.d'));
  });
  afterEach(() => fs.rmSync(etc, { recursive: true, force: true }));

  it('reads one-line sources first, skipping pockets, options and comments', () => {
    fs.writeFileSync(
      path.join(etc, 'sources.list'),
      '# deb http://commented.example/debian bookworm main\ndeb http://sec.example/debian-security bookworm-security main\ndeb [arch=amd64 signed-by=/k.gpg] http://one.example/debian/ bookworm main\n',
    );
    fs.writeFileSync(path.join(etc, 'sources.list.d/x.sources'), 'Types: deb\nURIs: http://two.example/debian\nSuites: bookworm\n');
    expect(nodeMirror(etc)).toBe('http://one.example/debian');
    expect(aptSources(etc).find((s) => s.uri.startsWith('http://one'))?.signedBy).toBe('/k.gpg');
  });

  it('reads deb822 stanzas, skipping disabled ones and deb-src', () => {
    fs.writeFileSync(
      path.join(etc, 'sources.list.d/debian.sources'),
      'Types: deb\nURIs: http://off.example/debian\nSuites: trixie\nEnabled: no\n\nTypes: deb-src\nURIs: http://src.example/debian\nSuites: trixie\n\n' +
        'Types: deb\nURIs: http://sec.example/debian-security\nSuites: trixie-security\n\nTypes: deb\n# a comment\nURIs: http://on.example/debian\nSuites: trixie trixie-updates\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
    );
    expect(nodeMirror(etc)).toBe('http://on.example/debian');
  });

  it('is undefined when the node names no archive', () => {
    expect(nodeMirror(etc)).toBeUndefined();
  });
});
