// Stand-ins for a VNC server, run as a forked child: argv[2] is the mode.
//   echo:   writes back every byte it reads (with backpressure, via pipe).
//   source: streams 64 KiB chunks as fast as the peer takes them; counts bytes written.
//   proxy <port>: a bare TCP byte pump to 127.0.0.1:<port> (pipe both ways, setNoDelay), the
//                 floor for any relay: same hop count as the WebSocket relay, no framing.
// Tells the parent {port} over IPC; answers 'stats' with {written, rss, cpu (µs used so far)}.
// Exits when the parent goes away.
import net from 'node:net';

const mode = process.argv[2];
let written = 0;
const chunk = Buffer.alloc(64 * 1024, 0x5a);

const server = net.createServer((sock) => {
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy());
  if (mode === 'echo') {
    sock.pipe(sock);
    return;
  }
  if (mode === 'proxy') {
    const up = net.connect({ host: '127.0.0.1', port: Number(process.argv[3]) });
    up.setNoDelay(true);
    up.on('error', () => sock.destroy());
    sock.on('close', () => up.destroy());
    up.on('close', () => sock.destroy());
    sock.pipe(up).pipe(sock);
    return;
  }
  const pump = () => {
    while (!sock.destroyed) {
      written += chunk.length;
      if (!sock.write(chunk)) {
        sock.once('drain', pump);
        return;
      }
    }
  };
  pump();
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (m) => {
  if (m === 'stats') {
    const c = process.cpuUsage();
    process.send({ written, rss: process.memoryUsage().rss, cpu: c.user + c.system });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
