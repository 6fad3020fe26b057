import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import fs from 'node:fs';
import path from 'node:path';

/** The built web UI's directory, or null when there is none to serve. */
export function uiDir(webDir: string | null): string | null {
  return webDir && fs.existsSync(path.join(webDir, 'index.html')) ? webDir : null;
}

/** Serves the built web UI (public files; client-side routes get index.html from the 404 handler). */
export async function registerStaticUi(app: FastifyInstance, dir: string): Promise<void> {
  await app.register(fastifyStatic, { root: dir, prefix: '/', wildcard: true, index: ['index.html'] });
}
