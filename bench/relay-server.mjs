// The console relay alone: a plain http server whose upgrades go to the server's own
// createVncProxy (packages/server/dist/console/proxy.js), with every VM id mapped to
// 127.0.0.1:<argv[2]>. Run as a forked child; tells the parent {port} over IPC.
// With argv[2] === 'banner' it is instead the floor for a WebSocket console: a WebSocket server
// that itself sends an RFB banner on connection (no proxy, no TCP hop behind it).
// Answers 'stats' with {rss, maxBuffered, sessions, cpu (µs used so far)}: maxBuffered is the
// largest ws.bufferedAmount seen right after a send (measured by wrapping WebSocket.prototype.send
// of the same `ws` module instance the proxy uses); 'reset' clears it.
import http from 'node:http';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const targetPort = Number(process.argv[2]);
const proxyUrl = new URL('../packages/server/dist/console/proxy.js', import.meta.url);
const require = createRequire(proxyUrl);
const wsModule = await import(pathToFileURL(require.resolve('ws')).href);
const WebSocket = wsModule.WebSocket ?? wsModule.default;
const WebSocketServer = wsModule.WebSocketServer ?? wsModule.default.WebSocketServer;

let maxBuffered = 0;
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (...args) {
  const r = send.apply(this, args);
  if (this.bufferedAmount > maxBuffered) maxBuffered = this.bufferedAmount;
  return r;
};

const server = http.createServer((_req, res) => res.writeHead(404).end());
let proxy = { sessions: 0 };
if (process.argv[2] === 'banner') {
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws) => ws.send(Buffer.from('RFB 003.008\n')));
} else {
  const { createVncProxy } = await import(proxyUrl.href);
  proxy = createVncProxy({ resolveTarget: () => ({ host: '127.0.0.1', port: targetPort }) });
  server.on('upgrade', (req, socket, head) => {
    if (!proxy.handleUpgrade(req, socket, head)) socket.destroy();
  });
}
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (m) => {
  if (m === 'reset') maxBuffered = 0;
  if (m === 'stats' || m === 'reset') {
    const c = process.cpuUsage();
    process.send({ rss: process.memoryUsage().rss, maxBuffered, sessions: proxy.sessions, cpu: c.user + c.system });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
