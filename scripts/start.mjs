// `npm start`: checks host programs, builds what is out of date, then runs the server in this process.
import { build, root } from './build.mjs';
import { ensureSystemDeps, RUNTIME } from './system-deps.mjs';

ensureSystemDeps(RUNTIME);
build();
process.chdir(process.env.INIT_CWD ?? root);
await import(new URL('../packages/server/dist/main.js', import.meta.url).href);
