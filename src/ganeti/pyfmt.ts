/** Python's repr() and str() of the values Ganeti puts into its messages, so ours read the same. */

import { isUtf8 } from 'node:buffer';
import { PY_DECIMAL_ZEROS, PY_NONPRINTABLE } from './py-unicode';

/** Python's str.isprintable() for one code point (Python's own Unicode tables). */
export function pyIsPrintable(c: number): boolean {
  let lo = 0;
  let hi = PY_NONPRINTABLE.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = PY_NONPRINTABLE[mid];
    if (c < a) hi = mid - 1;
    else if (c > b) lo = mid + 1;
    else return false;
  }
  return true;
}

/** unicodedata.decimal(): the digit value int() gives a code point, or undefined. */
export function pyDecimal(c: number): number | undefined {
  let lo = 0;
  let hi = PY_DECIMAL_ZEROS.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const z = PY_DECIMAL_ZEROS[mid];
    if (c < z) hi = mid - 1;
    else if (c >= z + 10) lo = mid + 1;
    else return c - z;
  }
  return undefined;
}

/** repr() of a Python str. */
export function pyReprStr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  // Iterate by code unit pairs so lone surrogates (Python's surrogateescape) survive.
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = (c - 0xd800) * 0x400 + (d - 0xdc00) + 0x10000;
        i++;
      }
    }
    const ch = String.fromCodePoint(c);
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += '\\' + quote;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === ' ' || (c >= 0x20 && c < 0x7f)) out += ch;
    else if (!pyIsPrintable(c)) {
      if (c < 0x100) out += '\\x' + c.toString(16).padStart(2, '0');
      else if (c < 0x10000) out += '\\u' + c.toString(16).padStart(4, '0');
      else out += '\\U' + c.toString(16).padStart(8, '0');
    } else out += ch;
  }
  return out + quote;
}

/** `%.<n>R` in CPython's PyErr_Format: the repr, cut to n code points. */
export function pyReprTrunc(s: string, n: number): string {
  const r = Array.from(pyReprStr(s));
  return r.length > n ? r.slice(0, n).join('') : r.join('');
}

/** repr() of a list of Python ints. */
export function pyReprIntList(values: readonly (number | bigint)[]): string {
  return '[' + values.map((v) => (typeof v === 'bigint' ? v.toString() : String(v))).join(', ') + ']';
}

/** repr(constants.OS_API_VERSIONS) in CPython: small ints iterate in hash-table order. */
export const OS_API_VERSIONS_REPR = 'frozenset({10, 20, 15})';

/** errno.errorcode names where libuv's code differs from Python's. */
const ERRNO_ALIASES: Record<string, string> = { ENOTSUP: 'EOPNOTSUPP', EWOULDBLOCK: 'EAGAIN', EDEADLOCK: 'EDEADLK' };

/** utils.ErrnoOrStr: the errno name Python reports for an OS error. */
export function pyErrnoName(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return ERRNO_ALIASES[code] ?? code;
  return String((err as Error)?.message ?? err);
}

/**
 * Decode bytes as Python's strict UTF-8 codec does. On failure, the message of the
 * UnicodeDecodeError Python raises, word for word.
 */
export function pyDecodeUtf8(buf: Uint8Array): { text: string } | { error: string; start: number; end: number } {
  const bad = findUtf8Error(buf);
  if (!bad) return { text: Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8') };
  const where =
    bad.end - bad.start === 1
      ? `byte 0x${buf[bad.start].toString(16).padStart(2, '0')} in position ${bad.start}`
      : `bytes in position ${bad.start}-${bad.end - 1}`;
  return { error: `'utf-8' codec can't decode ${where}: ${bad.reason}`, start: bad.start, end: bad.end };
}

/** The first UTF-8 error CPython's decoder reports: [start, end) and reason. */
export function findUtf8Error(buf: Uint8Array, from = 0): { start: number; end: number; reason: string } | undefined {
  // Node's validator (simdutf) refuses exactly what the loop below does (overlong forms,
  // surrogates, past U+10FFFF, a cut sequence): valid text needs no byte-by-byte walk.
  if (isUtf8(from ? buf.subarray(from) : buf)) return undefined;
  const n = buf.length;
  const cont = (b: number) => b >= 0x80 && b <= 0xbf;
  let i = from;
  while (i < n) {
    const b = buf[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return { start: i, end: i + 1, reason: 'invalid start byte' };
    for (let k = 1; k <= need; k++) {
      if (i + k >= n) return { start: i, end: n, reason: 'unexpected end of data' };
      const c = buf[i + k];
      const ok = k === 1 ? c >= lo && c <= hi : cont(c);
      if (!ok) return { start: i, end: i + k, reason: 'invalid continuation byte' };
    }
    i += need + 1;
  }
  return undefined;
}

/** os.fsdecode(): bytes to str with surrogateescape, as os.listdir() names files. */
export function pyFsDecode(buf: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < buf.length) {
    const bad = findUtf8Error(buf, i);
    const stop = bad ? bad.start : buf.length;
    out += Buffer.from(buf.subarray(i, stop)).toString('utf8');
    if (!bad) break;
    for (let k = bad.start; k < bad.end; k++) out += String.fromCharCode(0xdc00 + buf[k]);
    i = bad.end;
  }
  return out;
}
