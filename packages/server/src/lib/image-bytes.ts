import fs from 'node:fs';
import { AppError } from './errors.js';

/** Small helpers of the image header readers. */

export function refuse(message: string): AppError {
  return new AppError('IMAGE_NOT_ALLOWED', message);
}

/** An image's own bytes, quoted and cut short, safe to put in a message. */
export function show(s: string): string {
  return JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);
}

export function readAt(fd: number, position: number, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const buf = Buffer.alloc(length);
    fs.read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(buf.subarray(0, n))));
  });
}
