import { readAt, refuse } from './image-bytes.js';

/** The header checks of the intake-only formats (vdi, vhdx): read by the server itself, no process. */

const VDI_SIGNATURE = 0xbeda107f;
const VDI_VERSION_1_1 = 0x00010001;
const VDI_HEADER_SIZES = [0x180, 0x190];
const VDI_TYPE_DYNAMIC = 1;
const VDI_TYPE_STATIC = 2;
const VDI_TYPE_DIFF = 4;
const VDI_BLOCK_SIZE = 1 << 20;
const VDI_MAX_BLOCKS = Math.floor(0xffffffff / 4);
/** vhdx (Hyper-V): the region table at 192 KiB, 64 KiB long; a metadata table of at most 64 KiB. */
const VHDX_REGION_TABLE_OFFSET = 192 * 1024;
const VHDX_TABLE_SIZE = 64 * 1024;
const VHDX_MAX_ENTRIES = 2047;
const VHDX_REGION_REQUIRED = 1;
const VHDX_META_REQUIRED = 4;
const VHDX_HAS_PARENT = 2;
const VHDX_MAX_METADATA_ITEM = 1024 * 1024;
const VHDX_BAT_GUID = msGuid('2DC27766-F623-4200-9D64-115E9BFD4A08');
const VHDX_METADATA_GUID = msGuid('8B7CA206-4790-4B9A-B8FE-575F050F886E');
const VHDX_FILE_PARAMETERS_GUID = msGuid('CAA16737-FA36-4D43-B3B6-33F0AA44E76B');
const VHDX_PARENT_LOCATOR_GUID = msGuid('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C');

/**
 * A vdi, checked as QEMU's vdi driver opens one (signature, version 1.1, sector and block sizes,
 * aligned offsets, a size its block map covers), and stricter: a known header size, and an image
 * type of dynamic or fixed. A differencing vdi (type 4), or any with a parent or link UUID, refers
 * to another image: refused.
 */
export async function checkVdi(fd: number, real: string): Promise<void> {
  const h = await readAt(fd, 0, 512);
  if (h.length < 0x48 || h.readUInt32LE(0x40) !== VDI_SIGNATURE) throw refuse(`${real} is not a vdi image`);
  if (h.length < 512) throw refuse(`${real} has a truncated vdi header`);
  const version = h.readUInt32LE(0x44);
  if (version !== VDI_VERSION_1_1) throw refuse(`${real} has an unsupported vdi version (${version >>> 16}.${version & 0xffff})`);
  if (!VDI_HEADER_SIZES.includes(h.readUInt32LE(0x48))) throw refuse(`${real} has an unsupported vdi header size (${h.readUInt32LE(0x48)})`);
  const type = h.readUInt32LE(0x4c);
  if (type === VDI_TYPE_DIFF) throw refuse(`${real} is a differencing vdi (it names a parent image); only dynamic or fixed vdi images are accepted`);
  if (type !== VDI_TYPE_DYNAMIC && type !== VDI_TYPE_STATIC) throw refuse(`${real} is a vdi of type ${type}; only dynamic or fixed vdi images are accepted`);
  const bmap = h.readUInt32LE(0x154);
  const data = h.readUInt32LE(0x158);
  if (bmap % 512 !== 0 || data % 512 !== 0) throw refuse(`${real} has an unaligned vdi block map or data offset`);
  if (h.readUInt32LE(0x168) !== 512) throw refuse(`${real} has an unsupported vdi sector size`);
  const diskSize = h.readBigUInt64LE(0x170);
  if (h.readUInt32LE(0x178) !== VDI_BLOCK_SIZE) throw refuse(`${real} has an unsupported vdi block size`);
  const blocks = h.readUInt32LE(0x180);
  if (blocks > VDI_MAX_BLOCKS) throw refuse(`${real} has too many vdi blocks`);
  if (diskSize > BigInt(blocks) * BigInt(VDI_BLOCK_SIZE)) throw refuse(`${real} has a vdi size its block map does not cover`);
  const zero = (at: number) => h.subarray(at, at + 16).every((b) => b === 0);
  if (!zero(0x1a8) || !zero(0x1b8)) throw refuse(`${real} is a vdi with a parent or link image; only self-contained vdi images are accepted`);
}

/**
 * A vhdx, read as QEMU's vhdx driver opens one: the file identifier, the region table at 192 KiB
 * (checksum, signature, at most 2047 entries, one BAT and one metadata region, no unknown required
 * region), then the metadata table at the metadata region (signature, at most 2047 entries, each
 * known item at most once, no unknown required item), then the File Parameters item. A vhdx whose
 * file parameters say it has a parent (differencing), or that carries a parent locator, refers to
 * another image: refused. Every offset and length is bounded by the region it lies in.
 */
export async function checkVhdx(fd: number, real: string): Promise<void> {
  const id = await readAt(fd, 0, 8);
  if (id.toString('latin1') !== 'vhdxfile') throw refuse(`${real} is not a vhdx image`);
  const rt = await readAt(fd, VHDX_REGION_TABLE_OFFSET, VHDX_TABLE_SIZE);
  if (rt.length < VHDX_TABLE_SIZE) throw refuse(`${real} has a truncated vhdx region table`);
  if (rt.subarray(0, 4).toString('latin1') !== 'regi') throw refuse(`${real} has no vhdx region table`);
  if (crc32c(rt, 4) !== rt.readUInt32LE(4)) throw refuse(`${real} has a vhdx region table with a bad checksum`);
  const regions = rt.readUInt32LE(8);
  if (regions > VHDX_MAX_ENTRIES) throw refuse(`${real} has too many vhdx regions`);
  let metadata: { offset: number; length: number } | null = null;
  let bat = false;
  for (let i = 0; i < regions; i++) {
    const e = rt.subarray(16 + i * 32, 48 + i * 32);
    const guid = e.subarray(0, 16);
    if (guid.equals(VHDX_METADATA_GUID)) {
      if (metadata) throw refuse(`${real} has two vhdx metadata regions`);
      const offset = e.readBigUInt64LE(16);
      if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw refuse(`${real} has an invalid vhdx metadata region offset`);
      metadata = { offset: Number(offset), length: e.readUInt32LE(24) };
    } else if (guid.equals(VHDX_BAT_GUID)) {
      if (bat) throw refuse(`${real} has two vhdx block allocation tables`);
      bat = true;
    } else if (e.readUInt32LE(28) & VHDX_REGION_REQUIRED) {
      throw refuse(`${real} has a required vhdx region this server does not know`);
    }
  }
  if (!metadata || !bat) throw refuse(`${real} lacks a vhdx metadata region or block allocation table`);
  if (metadata.length < VHDX_TABLE_SIZE) throw refuse(`${real} has a vhdx metadata region too small for its table`);
  const mt = await readAt(fd, metadata.offset, VHDX_TABLE_SIZE);
  if (mt.length < VHDX_TABLE_SIZE) throw refuse(`${real} has a truncated vhdx metadata table`);
  if (mt.subarray(0, 8).toString('latin1') !== 'metadata') throw refuse(`${real} has no vhdx metadata table`);
  const items = mt.readUInt16LE(10);
  if (items > VHDX_MAX_ENTRIES) throw refuse(`${real} has too many vhdx metadata items`);
  let params: { offset: number; length: number } | null = null;
  const seen = new Set<string>();
  for (let i = 0; i < items; i++) {
    const e = mt.subarray(32 + i * 32, 64 + i * 32);
    const guid = e.subarray(0, 16);
    const key = guid.toString('hex');
    if (guid.equals(VHDX_PARENT_LOCATOR_GUID)) {
      throw refuse(`${real} is a vhdx with a parent locator (a differencing image); only self-contained vhdx images are accepted`);
    }
    if (guid.equals(VHDX_FILE_PARAMETERS_GUID) || KNOWN_VHDX_ITEMS.has(key)) {
      if (seen.has(key)) throw refuse(`${real} has a vhdx metadata item twice`);
      seen.add(key);
      if (guid.equals(VHDX_FILE_PARAMETERS_GUID)) params = { offset: e.readUInt32LE(16), length: e.readUInt32LE(20) };
    } else if (e.readUInt32LE(24) & VHDX_META_REQUIRED) {
      throw refuse(`${real} has a required vhdx metadata item this server does not know`);
    }
  }
  if (!params) throw refuse(`${real} has no vhdx file parameters`);
  if (params.length < 8 || params.length > VHDX_MAX_METADATA_ITEM || params.offset + 8 > metadata.length) {
    throw refuse(`${real} has vhdx file parameters outside its metadata region`);
  }
  const p = await readAt(fd, metadata.offset + params.offset, 8);
  if (p.length < 8) throw refuse(`${real} has truncated vhdx file parameters`);
  if (p.readUInt32LE(4) & VHDX_HAS_PARENT) throw refuse(`${real} is a differencing vhdx (it has a parent image); only self-contained vhdx images are accepted`);
}

/** The metadata items QEMU knows (other than the file parameters and the parent locator). */
const KNOWN_VHDX_ITEMS = new Set(
  [
    '2FA54224-CD1B-4876-B211-5DBED83BF4B8', // virtual disk size
    'BECA12AB-B2E6-4523-93EF-C309E000C746', // page 83 data
    '8141BF1D-A96F-4709-BA47-F233A8FAAB5F', // logical sector size
    'CDA348C7-445D-4471-9CC9-E9885251C556', // physical sector size
  ].map((g) => msGuid(g).toString('hex')),
);

/** A GUID as stored on disk by Microsoft formats: the first three fields little-endian. */
function msGuid(text: string): Buffer {
  const hex = text.replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  const out = Buffer.from(b);
  out.writeUInt32LE(b.readUInt32BE(0), 0);
  out.writeUInt16LE(b.readUInt16BE(4), 4);
  out.writeUInt16LE(b.readUInt16BE(6), 6);
  return out;
}

let CRC32C_TABLE: Uint32Array | null = null;

/** CRC-32C (Castagnoli) of `buf` with the 4 bytes at `skip` taken as zero, as vhdx checksums are. */
export function crc32c(buf: Buffer, skip = -1): number {
  if (!CRC32C_TABLE) {
    CRC32C_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      CRC32C_TABLE[n] = c >>> 0;
    }
  }
  const t = CRC32C_TABLE;
  let crc = 0xffffffff;
  for (let i = 0; i < buf.length; i++) {
    const byte = i >= skip && i < skip + 4 ? 0 : buf[i]!;
    crc = t[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}
