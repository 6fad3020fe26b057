import zlib from 'node:zlib';

/**
 * Metrics (issue 14): a small PNG reader and writer for screenshots. Reads what QEMU's
 * `screendump` writes (8-bit RGB or RGBA, grey too, not interlaced), strictly and bounded: the
 * bytes come from a VM's QEMU, which a guest may have taken over. Writes 8-bit RGB.
 */

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Larger frames are refused (QEMU's std VGA tops out well below). */
export const PNG_MAX_SIDE = 8192;
export const PNG_MAX_PIXELS = 4096 * 4096;

export interface Rgb {
  width: number;
  height: number;
  /** width × height × 3 bytes, rows top to bottom. */
  data: Buffer;
}

export class PngError extends Error {}

const CHANNELS: Partial<Record<number, number>> = { 0: 1, 2: 3, 4: 2, 6: 4 };

export function decodePng(png: Buffer): Rgb {
  if (png.length < 8 || !png.subarray(0, 8).equals(SIGNATURE)) throw new PngError('not a PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  let sawEnd = false;
  while (off + 12 <= png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    if (len > png.length - off - 12) throw new PngError('truncated chunk');
    const body = png.subarray(off + 8, off + 8 + len);
    if (zlib.crc32(png.subarray(off + 4, off + 8 + len)) !== png.readUInt32BE(off + 8 + len)) throw new PngError(`bad CRC in ${type}`);
    off += 12 + len;
    if (type === 'IHDR') {
      if (len !== 13) throw new PngError('bad IHDR');
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const [depth, colour, compression, filter, interlace] = [body[8], body[9], body[10], body[11], body[12]];
      channels = CHANNELS[colour ?? -1] ?? 0;
      if (depth !== 8 || !channels || compression !== 0 || filter !== 0 || interlace !== 0) throw new PngError('unsupported PNG layout');
      if (!width || !height || width > PNG_MAX_SIDE || height > PNG_MAX_SIDE || width * height > PNG_MAX_PIXELS) throw new PngError('PNG too large');
    } else if (type === 'IDAT') {
      if (!width) throw new PngError('IDAT before IHDR');
      idat.push(body);
    } else if (type === 'IEND') {
      sawEnd = true;
      break;
    }
  }
  if (!sawEnd || !width) throw new PngError('incomplete PNG');
  const stride = width * channels;
  const expected = (stride + 1) * height;
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(Buffer.concat(idat), { maxOutputLength: expected });
  } catch {
    throw new PngError('bad image data');
  }
  if (raw.length !== expected) throw new PngError('image data of the wrong size');
  const px = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const ft = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = px.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? px.subarray((y - 1) * stride, y * stride) : null;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? row[i - channels]! : 0;
      const b = prev ? prev[i]! : 0;
      const c = prev && i >= channels ? prev[i - channels]! : 0;
      let pred: number;
      switch (ft) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) >> 1; break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: throw new PngError('bad filter type');
      }
      row[i] = (src[i]! + pred) & 0xff;
    }
  }
  if (channels === 3) return { width, height, data: px };
  const data = Buffer.alloc(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const s = p * channels;
    const grey = channels <= 2;
    data[p * 3] = px[s]!;
    data[p * 3 + 1] = grey ? px[s]! : px[s + 1]!;
    data[p * 3 + 2] = grey ? px[s]! : px[s + 2]!;
  }
  return { width, height, data };
}

function chunk(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

export function encodePng(img: Rgb): Buffer {
  const stride = img.width * 3;
  const raw = Buffer.alloc((stride + 1) * img.height);
  for (let y = 0; y < img.height; y++) img.data.copy(raw, y * (stride + 1) + 1, y * stride, (y + 1) * stride);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(img.width, 0);
  ihdr.writeUInt32BE(img.height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw, { level: 6 })), chunk('IEND', Buffer.alloc(0))]);
}

/** Scales down to `width` (never up), keeping the aspect ratio, each target pixel the average of its source box. */
export function scaleRgb(img: Rgb, width: number): Rgb {
  if (width >= img.width) return img;
  const height = Math.max(1, Math.round((img.height * width) / img.width));
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    const y0 = Math.floor((y * img.height) / height);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * img.height) / height));
    for (let x = 0; x < width; x++) {
      const x0 = Math.floor((x * img.width) / width);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * img.width) / width));
      let r = 0;
      let g = 0;
      let b = 0;
      for (let sy = y0; sy < y1; sy++) {
        for (let sx = x0; sx < x1; sx++) {
          const s = (sy * img.width + sx) * 3;
          r += img.data[s]!;
          g += img.data[s + 1]!;
          b += img.data[s + 2]!;
        }
      }
      const n = (y1 - y0) * (x1 - x0);
      const d = (y * width + x) * 3;
      data[d] = Math.round(r / n);
      data[d + 1] = Math.round(g / n);
      data[d + 2] = Math.round(b / n);
    }
  }
  return { width, height, data };
}
