import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodePng, encodePng, PngError, scaleRgb } from './png.js';

/** A PNG with the given colour type and one filter for every row (the reader must undo all five). */
function pngWith(width: number, height: number, channels: 3 | 4, px: (x: number, y: number) => number[], filter: number): Buffer {
  const stride = width * channels;
  const rows: Buffer[] = [];
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(stride);
    for (let x = 0; x < width; x++) px(x, y).slice(0, channels).forEach((v, c) => (row[x * channels + c] = v));
    const out = Buffer.alloc(stride + 1);
    out[0] = filter;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? row[i - channels] : 0;
      const b = prev[i];
      const c = i >= channels ? prev[i - channels] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][filter];
      out[i + 1] = (row[i] - pred) & 0xff;
    }
    rows.push(out);
    prev = row;
  }
  const chunk = (type: string, body: Buffer) => {
    const h = Buffer.alloc(8);
    h.writeUInt32BE(body.length);
    h.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(Buffer.concat([h.subarray(4), body])));
    return Buffer.concat([h, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = channels === 3 ? 2 : 6;
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

const colour = (x: number, y: number) => [(x * 37 + y) & 0xff, (y * 91) & 0xff, (x ^ y) & 0xff, 255];

describe('PNG reader and writer (issue 14)', () => {
  it('undoes every filter type, RGB and RGBA', () => {
    for (const channels of [3, 4] as const) {
      for (let f = 0; f <= 4; f++) {
        const img = decodePng(pngWith(7, 5, channels, colour, f));
        expect([img.width, img.height]).toEqual([7, 5]);
        expect([...img.data.subarray((2 * 7 + 3) * 3, (2 * 7 + 3) * 3 + 3)]).toEqual(colour(3, 2).slice(0, 3));
      }
    }
  });

  it('round-trips through the writer and scales down by box averages', () => {
    const data = Buffer.alloc(4 * 2 * 3);
    data.fill(200, 0, 6); // pixels (0,0) and (1,0) at 200, the rest 0
    const back = decodePng(encodePng({ width: 4, height: 2, data }));
    expect(back.data.equals(data)).toBe(true);
    const half = scaleRgb(back, 2);
    expect([half.width, half.height]).toEqual([2, 1]);
    expect([...half.data]).toEqual([100, 100, 100, 0, 0, 0]);
    expect(scaleRgb(back, 10)).toBe(back); // never up
  });

  it('refuses what is not a well-formed, bounded PNG', () => {
    const good = pngWith(3, 3, 3, colour, 0);
    expect(() => decodePng(Buffer.from('not a png'))).toThrow(PngError);
    const badCrc = Buffer.from(good);
    badCrc[good.length - 20] ^= 0xff;
    expect(() => decodePng(badCrc)).toThrow(PngError);
    expect(() => decodePng(good.subarray(0, good.length - 12))).toThrow(/incomplete|truncated/);
    const huge = pngWith(1, 1, 3, colour, 0);
    huge.writeUInt32BE(100_000, 16); // width in IHDR (then the CRC no longer matches: patch it)
    huge.writeUInt32BE(zlib.crc32(huge.subarray(12, 29)), 29);
    expect(() => decodePng(huge)).toThrow(/too large/);
  });
});
