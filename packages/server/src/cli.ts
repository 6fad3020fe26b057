/**
 * Admin commands that work on the data dir directly (the server may be running):
 *   set-password                      reads the new admin password from stdin (prompted on a terminal)
 *   create-token --name N --scope admin|read [--expires-in SECONDS]   prints the token once
 * Unknown options, missing values and a token the API would refuse are errors (exit status 2).
 */
import { CreateTokenBody } from '@qemu-manager/contract';
import { Value } from '@sinclair/typebox/value';
import path from 'node:path';
import { AuthService } from './auth/service.js';
import { AuthStore } from './auth/store.js';
import { loadConfig } from './config.js';
import { openDb } from './store/sqlite.js';
import { HOST_USAGE, HostUsageError, hostCommand } from './cli-host.js'; // service and autostart (issue 15)

async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let data = '';
    for await (const chunk of stdin) data += chunk;
    return data.replace(/\r?\n$/, '');
  }
  process.stderr.write('New admin password: ');
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  return new Promise((resolve) => {
    let pw = '';
    stdin.on('data', (ch: string) => {
      if (ch === '\r' || ch === '\n') {
        stdin.setRawMode(false);
        stdin.pause();
        process.stderr.write('\n');
        resolve(pw);
      } else if (ch === '\u0003') process.exit(130);
      else if (ch === '\u007f') pw = pw.slice(0, -1);
      else pw += ch;
    });
  });
}

const USAGE =
  'usage: admin set-password\n' +
  '       admin create-token --name NAME --scope admin|read [--expires-in SECONDS]\n' +
  HOST_USAGE;

/** A command line the CLI refuses: printed with the usage, exit status 2. */
class UsageError extends Error {}

/**
 * Parses `--flag value` and `--flag=value` pairs strictly: each flag known, given once, with a value;
 * nothing else on the line.
 */
function parseFlags(args: string[], known: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (!known.includes(name)) throw new UsageError(arg.startsWith('-') ? `unknown option ${JSON.stringify(name)}` : `unexpected argument ${JSON.stringify(arg)}`);
    if (name in out) throw new UsageError(`${name} is given twice`);
    const value = eq > 0 && arg.startsWith('--') ? arg.slice(eq + 1) : args[++i];
    if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new UsageError(`${name} needs a value`);
    out[name] = value;
  }
  return out;
}

/** The create-token body from the command line, checked with the API's own schema. */
function tokenBody(args: string[]): CreateTokenBody {
  const f = parseFlags(args, ['--name', '--scope', '--expires-in']);
  if (f['--name'] === undefined || f['--scope'] === undefined) throw new UsageError('--name and --scope are required');
  const expires = f['--expires-in'];
  if (expires !== undefined && !/^[0-9]{1,12}$/.test(expires)) {
    throw new UsageError(`--expires-in must be a whole number of seconds, got ${JSON.stringify(expires)}`);
  }
  const body = { name: f['--name'], scope: f['--scope'], ...(expires !== undefined ? { expiresIn: Number(expires) } : {}) };
  if (!Value.Check(CreateTokenBody, body)) {
    const problems = [...Value.Errors(CreateTokenBody, body)].map((e) => `${flagOf(e.path)}: ${e.message}`);
    throw new UsageError(`invalid token: ${[...new Set(problems)].join('; ')}`);
  }
  return body;
}

function flagOf(path: string): string {
  return path === '/expiresIn' ? '--expires-in' : path === '/name' ? '--name' : path === '/scope' ? '--scope' : path || 'token';
}

async function main(): Promise<number> {
  process.umask(0o077); // the database and its -wal/-shm files: owner only
  const [cmd, ...args] = process.argv.slice(2);
  // service and autostart (issue 15): `service install|uninstall`, `host shutdown-vms`
  if (cmd === 'service' || cmd === 'host') {
    try {
      return await hostCommand(cmd, args);
    } catch (err) {
      if (!(err instanceof HostUsageError)) throw err;
      console.error(`${err.message}\n${USAGE}`);
      return 2;
    }
  }
  let run: (auth: AuthService, dataDir: string) => Promise<number>;
  try {
    if (cmd === 'set-password') {
      parseFlags(args, []);
      run = async (auth, dataDir) => {
        await auth.setPassword(await readPassword());
        console.error(`Admin password set in ${dataDir}; existing sessions were ended.`);
        return 0;
      };
    } else if (cmd === 'create-token') {
      const body = tokenBody(args);
      run = (auth) => {
        console.log(auth.createToken(body).token);
        return Promise.resolve(0);
      };
    } else {
      throw new UsageError(cmd === undefined ? 'no command given' : `unknown command ${JSON.stringify(cmd)}`);
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\n${USAGE}`);
    return 2;
  }
  // The command line is valid: only now is the data dir opened.
  const config = loadConfig(process.env, process.env.INIT_CWD ?? process.cwd());
  const db = openDb(path.join(config.dataDir, 'db.sqlite'));
  const auth = new AuthService(new AuthStore(db), true);
  try {
    return await run(auth, config.dataDir);
  } catch (err) {
    console.error((err as Error).message);
    return 1;
  } finally {
    db.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error((err as Error).message);
    process.exit(1);
  },
);
