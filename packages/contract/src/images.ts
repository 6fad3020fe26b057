import { Type, type Static } from '@sinclair/typebox';
import { Timestamp } from './common.js';
import { DiskFormat } from './disks.js';

/**
 * Images (extension, issue 12): a library of ready disks (cloud images) under `$DATA_DIR/images/`,
 * always stored as qcow2. New VMs get a linked (or full) copy of one; an image that disks back
 * onto cannot be deleted.
 */
export const IMAGE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$';

export const Image = Type.Object(
  {
    name: Type.String(),
    format: Type.Literal('qcow2', { description: 'Images are stored as qcow2, whatever was downloaded or uploaded' }),
    virtualSize: Type.Integer({ minimum: 0, description: 'Bytes the guest sees' }),
    size: Type.Integer({ minimum: 0, description: 'Bytes used on the host' }),
    sha256: Type.String({ description: 'SHA-256 (hex) of the bytes received (download or upload), before conversion' }),
    createdAt: Timestamp,
    source: Type.String({ description: 'The URL it was downloaded from, or "upload"' }),
    usedBy: Type.Array(Type.String(), { description: 'Ids of the managed disks that back onto it (extension)' }),
  },
  { additionalProperties: false, $id: 'Image' },
);
export type Image = Static<typeof Image>;

export const ImageEnvelope = Type.Object({ image: Image }, { additionalProperties: false });
export type ImageEnvelope = Static<typeof ImageEnvelope>;
export const ImageListEnvelope = Type.Object({ images: Type.Array(Image) }, { additionalProperties: false });
export type ImageListEnvelope = Static<typeof ImageListEnvelope>;

export const ImageNameParams = Type.Object(
  { image_name: Type.String({ pattern: IMAGE_NAME_PATTERN, minLength: 1, maxLength: 63 }) },
  { additionalProperties: false },
);
export type ImageNameParams = Static<typeof ImageNameParams>;

/**
 * POST /api/images: download from an http(s) URL the host can reach (a task, `image.download`),
 * verify the checksum (given, or looked up by the file's name in a checksum list at `checksumUrl`:
 * GNU `sha256sum`/`sha512sum` lines or BSD `SHA256 (file) = …` lines), check it like a disk
 * upload and store it as qcow2.
 */
export const CreateImageBody = Type.Object(
  {
    name: Type.String({ pattern: IMAGE_NAME_PATTERN, minLength: 1, maxLength: 63 }),
    url: Type.String({ minLength: 1, maxLength: 4096, description: 'http:// or https://' }),
    sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
    checksumUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'http(s) URL of a SHA256SUMS/SHA512SUMS-style list naming the file (extension)' })),
    format: Type.Optional(DiskFormat),
  },
  { additionalProperties: false },
);
export type CreateImageBody = Static<typeof CreateImageBody>;

/** One entry of the catalogue of well-known cloud images (data, served by GET /api/images/catalogue). */
export const ImageCatalogueEntry = Type.Object(
  {
    id: Type.String({ description: 'Suggested image name, e.g. debian-12' }),
    title: Type.String({ description: 'e.g. "Debian 12 (bookworm)"' }),
    os: Type.String({ description: 'debian | ubuntu | fedora | alpine | …' }),
    url: Type.String(),
    checksumUrl: Type.String(),
    format: DiskFormat,
    osType: Type.Union([Type.Literal('linux'), Type.Literal('windows'), Type.Literal('other')]),
  },
  { additionalProperties: false },
);
export type ImageCatalogueEntry = Static<typeof ImageCatalogueEntry>;
export const ImageCatalogueEnvelope = Type.Object({ catalogue: Type.Array(ImageCatalogueEntry) }, { additionalProperties: false });
export type ImageCatalogueEnvelope = Static<typeof ImageCatalogueEnvelope>;
