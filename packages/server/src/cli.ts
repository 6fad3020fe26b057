/**
 * Admin commands that work on the data dir directly (the server may be running):
 *   set-password                      reads the new admin password from stdin (prompted on a terminal)
 *   create-token --name N --scope admin|read [--expires-in SECONDS]   prints the token once
 */
import path from 'node:path';
import { AuthService } from './auth/service.js';
import { AuthStore } from './auth/store.js';
import { loadConfig } from './config.js';
import { openDb } from './store/sqlite.js';

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

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(): Promise<number> {
  const [cmd, ...args] = process.argv.slice(2);
  const config = loadConfig(process.env, process.env.INIT_CWD ?? process.cwd());
  const db = openDb(path.join(config.dataDir, 'db.sqlite'));
  const auth = new AuthService(new AuthStore(db), true);
  try {
    if (cmd === 'set-password') {
      await auth.setPassword(await readPassword());
      console.error(`Admin password set in ${config.dataDir}; existing sessions were ended.`);
      return 0;
    }
    if (cmd === 'create-token') {
      const name = flag(args, '--name');
      const scope = flag(args, '--scope');
      const expires = flag(args, '--expires-in');
      if (!name || (scope !== 'admin' && scope !== 'read')) {
        console.error('usage: create-token --name NAME --scope admin|read [--expires-in SECONDS]');
        return 2;
      }
      const t = auth.createToken({ name, scope, ...(expires ? { expiresIn: Number(expires) } : {}) });
      console.log(t.token);
      return 0;
    }
    console.error('usage: admin set-password | admin create-token --name NAME --scope admin|read [--expires-in SECONDS]');
    return 2;
  } catch (err) {
    console.error((err as Error).message);
    return 1;
  } finally {
    db.close();
  }
}

main().then((code) => process.exit(code));
