import { StartupError, buildApp } from './app.js';
import { loadConfig } from './config.js';
import { listenUiPort } from './http/ui-listener.js';
import { prepareDataDir } from './store/sqlite.js';

/** Starts the server. VMs are separate processes: stopping the server leaves them running. */
async function main(): Promise<void> {
  // Everything the server writes (database, images, run files, logs) is its own: 0600 files, 0700 dirs.
  process.umask(0o077);
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error(`Configuration error: ${(err as Error).message}`);
    process.exit(2);
  }
  let built;
  try {
    prepareDataDir(config.dataDir);
    built = await buildApp(config);
  } catch (err) {
    if (err instanceof StartupError) {
      console.error(`Refusing to start: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const { app } = built;
  await app.listen({ host: config.host, port: config.port });
  // The second listener (UI_PORT): a port that is taken is a warning, never a reason not to start.
  const uiListener = await listenUiPort(app, config);
  let closing = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (closing) return;
      closing = true;
      app.log.info({ sig }, 'shutting down; running VMs keep running');
      uiListener?.close();
      app.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
