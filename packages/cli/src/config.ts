/**
 * Where the CLI finds its server and credentials: flags first, then QM_URL / QM_TOKEN, then the
 * config file ~/.config/qemu-manager/config.json ({ "url": …, "token": … }), then the default URL.
 * The file holds a token, so it is read only when no one but its owner can read it (mode 0600).
 */
import fs from 'node:fs';
import path from 'node:path';

export const DEFAULT_URL = 'http://127.0.0.1:5000';

export interface CliConfig {
  url: string;
  token: string | undefined;
}

/** A problem with the local setup (not the API): exit status 2, like a bad command line. */
export class ConfigError extends Error {}

export function configPath(env: NodeJS.ProcessEnv, home: string): string {
  const base = env.XDG_CONFIG_HOME || path.join(home, '.config');
  return path.join(base, 'qemu-manager', 'config.json');
}

function readFileConfig(file: string): Partial<CliConfig> {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return {}; // no file: nothing to read
  }
  if ((st.mode & 0o077) !== 0) {
    throw new ConfigError(
      `refusing to read ${file}: it is readable or writable by group or others (mode ${(st.mode & 0o777).toString(8)}) and may hold a token; run chmod 600 ${file}`,
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ConfigError(`${file} must hold a JSON object`);
  const out: Partial<CliConfig> = {};
  for (const [k, v] of Object.entries(data)) {
    if (k !== 'url' && k !== 'token') throw new ConfigError(`${file}: unknown key ${JSON.stringify(k)} (known: url, token)`);
    if (typeof v !== 'string') throw new ConfigError(`${file}: ${k} must be a string`);
    out[k] = v;
  }
  return out;
}

export function resolveConfig(flags: { url?: string; token?: string }, env: NodeJS.ProcessEnv, home: string): CliConfig {
  const needFile = flags.url === undefined || flags.token === undefined;
  const file = needFile ? readFileConfig(configPath(env, home)) : {};
  const url = flags.url ?? (env.QM_URL || undefined) ?? file.url ?? DEFAULT_URL;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError(`the server URL must be http:// or https://, got ${JSON.stringify(url)}`);
  return { url: url.replace(/\/+$/, ''), token: flags.token ?? (env.QM_TOKEN || undefined) ?? file.token };
}
