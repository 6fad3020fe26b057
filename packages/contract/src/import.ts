import { Type, type Static } from '@sinclair/typebox';
import { DISK_NAME_PATTERN, DiskFormat } from './disks.js';

/**
 * Import and convert (extension). Both are tasks (`disk.import`, `disk.convert`); the new disks are
 * registered only once complete and checked.
 */

/**
 * POST /api/disks/import: download an image (or an `.ova`: its vmdk disks become `<name>-disk<N>`)
 * from an http(s) URL the host can reach, check it like an upload, convert it to `format`.
 */
export const ImportDiskBody = Type.Object(
  {
    name: Type.String({ pattern: DISK_NAME_PATTERN, minLength: 1, maxLength: 63 }),
    url: Type.String({ minLength: 1, maxLength: 4096, description: 'http:// or https:// (followed through at most 5 redirects, http(s) only)' }),
    sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'the SHA-256 of the downloaded file, hex; a mismatch fails the task and keeps nothing' })),
    format: Type.Optional(DiskFormat),
  },
  { additionalProperties: false },
);
export type ImportDiskBody = Static<typeof ImportDiskBody>;

/** POST /api/disks/{disk_id}/convert: a new managed disk `name` in `format`, copied from the disk. */
export const ConvertDiskBody = Type.Object(
  {
    format: DiskFormat,
    name: Type.String({ pattern: DISK_NAME_PATTERN, minLength: 1, maxLength: 63 }),
  },
  { additionalProperties: false },
);
export type ConvertDiskBody = Static<typeof ConvertDiskBody>;
