import { IMAGE_NAME_PATTERN, ImageCatalogueEntry } from '@qemu-manager/contract';
import { Value } from '@sinclair/typebox/value';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The catalogue of well-known cloud images is data: `packages/server/data/image-catalogue.json`,
 * shipped with the server and found from the module (src/images/ or dist/images/ alike). It is
 * read and checked once, at start: every entry must match ImageCatalogueEntry, its id be a valid
 * image name, its URLs http(s), and ids unique; a bad file stops the server with the reason.
 */
export const CATALOGUE_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../data/image-catalogue.json');

export function loadCatalogue(file = CATALOGUE_FILE): ImageCatalogueEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`The image catalogue ${file} cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  return validateCatalogue(parsed, file);
}

export function validateCatalogue(parsed: unknown, file = 'the image catalogue'): ImageCatalogueEntry[] {
  if (!Array.isArray(parsed)) throw new Error(`${file} must be a JSON array of entries`);
  const name = new RegExp(IMAGE_NAME_PATTERN);
  const seen = new Set<string>();
  return parsed.map((entry: unknown, i) => {
    const errors = [...Value.Errors(ImageCatalogueEntry, entry)].map((e) => `${e.path || '/'} ${e.message}`);
    if (errors.length) throw new Error(`${file}: entry ${i} is not a catalogue entry: ${errors.slice(0, 3).join('; ')}`);
    const e = entry as ImageCatalogueEntry;
    if (!name.test(e.id)) throw new Error(`${file}: entry ${i} has the id ${JSON.stringify(e.id)}, which is not a valid image name`);
    if (seen.has(e.id)) throw new Error(`${file}: the id ${e.id} appears twice`);
    seen.add(e.id);
    for (const field of ['url', 'checksumUrl'] as const) {
      let u: URL | null = null;
      try {
        u = new URL(e[field]);
      } catch {
        /* refused below */
      }
      if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw new Error(`${file}: entry ${e.id} has a ${field} that is not an http(s) URL`);
    }
    return e;
  });
}
