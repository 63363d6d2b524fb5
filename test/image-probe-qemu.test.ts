/**
 * The image template's probe (img_probe in templates/image/lib/image-cache.sh) reads an image's
 * virtual size from `qemu-img info --output=json`. Newer QEMU (trixie's 10, which a Ganeti 3.1
 * node runs) lists the file under a qcow2 image as a child with a virtual-size of its own (the
 * qcow2 file's length) before the image's: read first, it made the probe see a GPT disk cut short
 * ("no partition table (found: PMBR)"). Here the probe runs with a qemu-img whose `info` answers
 * as QEMU 10 does (the real one for everything else) and as bookworm's 7.2 does.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fakeImage } from './helpers/images';
import { describeSystem } from './helpers/system';
import { REPO, tempDir } from './helpers/cli';

/** `qemu-img info --output=json` as QEMU 10.0 prints it for a qcow2 file (children first). */
const QEMU10_INFO = `#!/bin/sh
if [ "$1" = info ]; then
  for f; do :; done
  size=$(stat -c %s "$f")
  vsize=$("$REAL_QEMU_IMG" "$@" | sed -n 's/^    "virtual-size": *\\([0-9]*\\),*$/\\1/p')
  cat <<EOF
{
    "children": [
        {
            "name": "file",
            "info": {
                "children": [
                ],
                "virtual-size": $size,
                "filename": "$f",
                "format": "file"
            }
        }
    ],
    "virtual-size": $vsize,
    "filename": "$f",
    "format": "qcow2"
}
EOF
  exit 0
fi
exec "$REAL_QEMU_IMG" "$@"
`;

describeSystem('image template probe of a qcow2 image', { commands: ['qemu-img', 'blkid', 'partx', 'sfdisk'] }, () => {
  let work: string;
  /** The real qemu-img, which the stand-in asks and hands everything but `info` to. */
  const real = () => execFileSync('sh', ['-c', 'command -v qemu-img'], { encoding: 'utf8' }).trim();
  beforeAll(() => {
    work = tempDir('probe');
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  const probe = (pathDirs: string[], image: string): Record<string, string[]> => {
    const script = `set -eu\ngos_die() { echo "DIE: $*" >&2; exit 1; }\ngos_debug() { :; }\nIMAGE=$1\nsource "$2"\nimg_probe "$1" qcow2 "$3"\ncat "$3"\n`;
    const out = execFileSync('bash', ['-c', script, 'bash', image, path.join(REPO, 'templates', 'image', 'lib', 'image-cache.sh'), path.join(work, `${path.basename(pathDirs[0])}.info`)], {
      encoding: 'utf8',
      env: { PATH: [...pathDirs, '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':'), REAL_QEMU_IMG: real() },
    });
    const info: Record<string, string[]> = {};
    for (const line of out.trim().split('\n')) {
      const eq = line.indexOf('=');
      (info[line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
    }
    return info;
  };

  it("reads the image's own virtual size, not its file's, from QEMU 10's answer and from 7.2's", () => {
    const img = fakeImage('gpt-ubuntu', 'qcow2', work);
    const rawSize = fs.statSync(path.join(work, 'gpt-ubuntu.raw')).size;
    expect(fs.statSync(img.path).size).not.toBe(rawSize);
    const qemu10 = path.join(work, 'qemu10');
    fs.mkdirSync(qemu10);
    fs.writeFileSync(path.join(qemu10, 'qemu-img'), QEMU10_INFO, { mode: 0o755 });
    // The stand-in's answer has the file's size first, as QEMU 10's does.
    const said = execFileSync(path.join(qemu10, 'qemu-img'), ['info', '--output=json', '-f', 'qcow2', '--', img.path], { encoding: 'utf8', env: { PATH: process.env.PATH, REAL_QEMU_IMG: real() } });
    expect(said.indexOf(`"virtual-size": ${fs.statSync(img.path).size}`)).toBeLessThan(said.indexOf(`"virtual-size": ${rawSize}`));
    for (const dirs of [[qemu10], [path.join(work, 'host')]]) {
      const info = probe(dirs, img.path);
      expect([dirs[0], info.vsize, info.pttype]).toEqual([dirs[0], [String(rawSize)], ['gpt']]);
      expect(info.part?.length).toBeGreaterThan(0);
    }
  });
});
