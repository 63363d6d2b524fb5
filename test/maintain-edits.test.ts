/** The line-by-line edits of variants.list, parameters.list and variant configurations. */
import { joinLines, parseParametersList, parseVariantsList, splitLines } from '../src/ganeti/rules';
import {
  addVariantLine,
  parameterLineProblems,
  removeParameterLine,
  removeVariantLine,
  setConfValues,
  setParameterLine,
} from '../src/definition/maintain';

describe('splitLines', () => {
  it.each([
    ['', []],
    ['a\n', [{ text: 'a', eol: '\n' }]],
    ['a\r\nb', [{ text: 'a', eol: '\r\n' }, { text: 'b', eol: '' }]],
    ['a\n\n', [{ text: 'a', eol: '\n' }, { text: '', eol: '\n' }]],
    ['a\rb\u2028c\n', [{ text: 'a', eol: '\r' }, { text: 'b', eol: '\u2028' }, { text: 'c', eol: '\n' }]],
  ])('%j splits as Python splitlines does, keeping terminators', (text, lines) => {
    expect(splitLines(text)).toEqual(lines);
    expect(joinLines(splitLines(text))).toBe(text);
  });
});

describe('addVariantLine', () => {
  const list = '# Variants\n\ndefault\n  bookworm  \n# old suites:\n';

  it('adds after the last variant, keeping comments, blank lines and order', () => {
    const r = addVariantLine(list, 'trixie');
    expect(r.result).toBe('added');
    expect(r.text).toBe('# Variants\n\ndefault\n  bookworm  \ntrixie\n# old suites:\n');
    expect(parseVariantsList(r.text)).toEqual(['default', 'bookworm', 'trixie']);
  });

  it('adds before the first variant with first, below the header comments', () => {
    const r = addVariantLine(list, 'trixie', { first: true });
    expect(r.text).toBe('# Variants\n\ntrixie\ndefault\n  bookworm  \n# old suites:\n');
  });

  it('leaves an existing variant alone (matching stripped lines, as Ganeti does)', () => {
    expect(addVariantLine(list, 'bookworm')).toEqual({ text: list, result: 'exists' });
    expect(addVariantLine(list, 'default', { first: true })).toEqual({ text: list, result: 'exists' });
  });

  it('moves an existing variant to the front with first', () => {
    const r = addVariantLine(list, 'bookworm', { first: true });
    expect(r.result).toBe('moved');
    expect(parseVariantsList(r.text)).toEqual(['bookworm', 'default']);
    expect(r.text).toContain('# old suites:\n');
  });

  it('terminates a last line without a newline, and keeps CRLF files CRLF', () => {
    expect(addVariantLine('default', 'x').text).toBe('default\nx\n');
    expect(addVariantLine('a\r\nb\r\n', 'c').text).toBe('a\r\nb\r\nc\r\n');
  });

  it('adds to an empty or comment-only file', () => {
    expect(addVariantLine('', 'default').text).toBe('default\n');
    expect(addVariantLine('# none yet\n', 'default').text).toBe('# none yet\ndefault\n');
  });

  it('does not take a comment naming the variant for the variant', () => {
    expect(addVariantLine('#bookworm\ndefault\n', 'bookworm').result).toBe('added');
  });
});

describe('removeVariantLine', () => {
  it('removes every line naming it and nothing else', () => {
    const r = removeVariantLine('# keep\ndefault\n bookworm\n\n# bookworm\nbookworm\n', 'bookworm');
    expect(r).toEqual({ text: '# keep\ndefault\n\n# bookworm\n', removed: 2 });
  });
});

describe('setParameterLine / removeParameterLine', () => {
  it('appends "name description"', () => {
    expect(setParameterLine('filesystem The filesystem\n', 'size', ' Root size ')).toEqual({
      text: 'filesystem The filesystem\nsize Root size\n',
      result: 'added',
      droppedBlank: 0,
    });
  });

  it('replaces an existing parameter in place', () => {
    const r = setParameterLine('a A\nb B\nc C\n', 'b', 'Bee');
    expect(r.text).toBe('a A\nb Bee\nc C\n');
    expect(r.result).toBe('replaced');
    expect(setParameterLine('a A\n', 'a', 'A').result).toBe('same');
  });

  it('drops blank lines, which crash Ganeti, and never writes one', () => {
    const r = setParameterLine('a A\n\n   \nb B', 'c', 'C');
    expect(r.text).toBe('a A\nb B\nc C\n');
    expect(r.droppedBlank).toBe(2);
    for (const l of parseParametersList(r.text)) expect(l.fields).toHaveLength(2);
  });

  it('removes the parameter line only', () => {
    expect(removeParameterLine('a A\nb B\nc C\n', 'b')).toEqual({ text: 'a A\nc C\n', removed: 1, droppedBlank: 0 });
    expect(removeParameterLine('a A\n', 'a').text).toBe('');
  });

  it('finds the lines Ganeti mishandles', () => {
    expect(parameterLineProblems('a A\n# comment\nlonely\n\n').map((p) => p.line)).toEqual([2, 3]);
  });
});

describe('setConfValues', () => {
  const conf = '# shellcheck shell=bash\n# The suite\nSUITE=bookworm\nexport MIRROR=x\n';

  it('replaces an assignment in place, keeping export and comments', () => {
    expect(setConfValues(conf, { SUITE: 'trixie', MIRROR: 'http://deb.example/debian' })).toBe(
      "# shellcheck shell=bash\n# The suite\nSUITE=trixie\nexport MIRROR=http://deb.example/debian\n",
    );
  });

  it('appends a new key, quoted for bash', () => {
    expect(setConfValues(conf, { EXTRA_PKGS: "vim, it's" })).toBe(conf + "EXTRA_PKGS='vim, it'\\''s'\n");
  });

  it('replaces the last assignment, the one that wins', () => {
    expect(setConfValues('A=1\nA=2\n', { A: '3' })).toBe('A=1\nA=3\n');
  });
});
