// The BTF of a Linux kernel image (arm64's `Image`, gzip-compressed or not): the .BTF section
// of the vmlinux it was made from, the bytes /sys/kernel/btf/vmlinux shows on that kernel.
// Debian ships no arm64 vmlinux with sections, but the image carries the section's bytes,
// found by their header (magic 0xeB9F, version 1, 24 bytes).
//   node kernel-btf.mjs IMAGE OUT
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

const [image, out] = process.argv.slice(2);
let data = readFileSync(image);
if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);

const HEADER = Buffer.from([0x9f, 0xeb, 0x01, 0x00, 0x18, 0x00, 0x00, 0x00]);
const found = [];
for (let at = data.indexOf(HEADER); at >= 0; at = data.indexOf(HEADER, at + 1)) {
  const [typeOff, typeLen, strOff, strLen] = [8, 12, 16, 20].map((o) => data.readUInt32LE(at + o));
  const size = 24 + Math.max(typeOff + typeLen, strOff + strLen);
  // As the kernel's BTF lays it out: types first, then the strings, which start with "".
  if (typeOff === 0 && strOff === typeLen && at + size <= data.length && data[at + 24 + strOff] === 0) {
    found.push(data.subarray(at, at + size));
  }
}
if (found.length !== 1) {
  console.error(`kernel-btf: ${found.length} BTF headers in ${image}, expected one`);
  process.exit(1);
}
writeFileSync(out, found[0]);
