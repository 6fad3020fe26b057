// @ts-check
// Disk image fixtures the tests build by hand from images the real qemu-img wrote: the layouts
// other tools write (VMware's stream-optimized vmdk with its header in a footer), and header
// fields patched to what a hostile or unusual image says.

const GD_AT_END = 0xffffffffffffffffn;

/**
 * A stream-optimized vmdk laid out as VMware writes it (what an .ova carries), from one qemu-img
 * wrote (header first, with the grain directory offset in it; no end-of-stream marker): the first
 * header says the grain directory is "at end", and after the last grain come a footer marker, a
 * footer (the real header, magic first) and an end-of-stream marker. Grains and tables stay where
 * they were, so the footer's offsets still hold.
 * @param {Buffer} qemuStream
 * @returns {Buffer}
 */
export function vmdkWithFooter(qemuStream) {
  if (qemuStream.length % 512 !== 0 || qemuStream.subarray(0, 4).toString('latin1') !== 'KDMV') throw new Error('not a vmdk qemu-img wrote');
  const header = Buffer.from(qemuStream.subarray(0, 512));
  const body = Buffer.from(qemuStream);
  body.writeBigUInt64LE(GD_AT_END, 56);
  const marker = Buffer.alloc(512);
  marker.writeBigUInt64LE(1n, 0); // the footer is one sector
  marker.writeUInt32LE(3, 12); // MARKER_FOOTER
  return Buffer.concat([body, marker, header, Buffer.alloc(512)]);
}

/** Microsoft's on-disk GUID bytes (first three fields little-endian). @param {string} text */
export function msGuid(text) {
  const b = Buffer.from(text.replace(/-/g, ''), 'hex');
  const out = Buffer.from(b);
  out.writeUInt32LE(b.readUInt32BE(0), 0);
  out.writeUInt16LE(b.readUInt16BE(4), 4);
  out.writeUInt16LE(b.readUInt16BE(6), 6);
  return out;
}

export const VHDX_FILE_PARAMETERS = 'CAA16737-FA36-4D43-B3B6-33F0AA44E76B';
export const VHDX_PARENT_LOCATOR = 'A8D35F2D-B30B-454D-ABF7-D3D84834AB0C';
export const VHDX_PAGE83 = 'BECA12AB-B2E6-4523-93EF-C309E000C746';
const VHDX_METADATA_REGION = msGuid('8B7CA206-4790-4B9A-B8FE-575F050F886E');

/**
 * Where things are in a vhdx qemu-img wrote: the region table (at 192 KiB), the metadata table,
 * and each metadata item's entry (by GUID text) and data offsets.
 * @param {Buffer} vhdx
 */
export function vhdxLayout(vhdx) {
  const rt = 192 * 1024;
  const regions = vhdx.readUInt32LE(rt + 8);
  let metadata = -1;
  for (let i = 0; i < regions; i++) {
    const e = rt + 16 + i * 32;
    if (vhdx.subarray(e, e + 16).equals(VHDX_METADATA_REGION)) metadata = Number(vhdx.readBigUInt64LE(e + 16));
  }
  if (metadata < 0) throw new Error('no metadata region');
  /** @param {string} guid */
  const item = (guid) => {
    const id = msGuid(guid);
    const n = vhdx.readUInt16LE(metadata + 10);
    for (let i = 0; i < n; i++) {
      const e = metadata + 32 + i * 32;
      if (vhdx.subarray(e, e + 16).equals(id)) return { entry: e, data: metadata + vhdx.readUInt32LE(e + 16) };
    }
    throw new Error(`no item ${guid}`);
  };
  return { regionTable: rt, metadata, item };
}

/** The CRC-32C vhdx stores, over `buf` with its 4 bytes at `skip` as zero. @param {Buffer} buf @param {number} skip */
export function crc32c(buf, skip) {
  let crc = 0xffffffff;
  for (let i = 0; i < buf.length; i++) {
    crc ^= i >= skip && i < skip + 4 ? 0 : buf[i];
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0x82f63b78 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
