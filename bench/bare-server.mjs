// The throughput floor: a bare node:http server answering GET <path> with prepared bytes.
// Run as a forked child: argv[2] is a JSON file {routes: {"/api/vms": {file, contentType}}}.
// Tells the parent its port over IPC and exits when the parent goes away.
import fs from 'node:fs';
import http from 'node:http';

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const routes = new Map(
  Object.entries(spec.routes).map(([p, r]) => [
    p,
    { body: fs.readFileSync(r.file), type: r.contentType },
  ]),
);

const server = http.createServer((req, res) => {
  const r = routes.get(req.url);
  if (!r) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': r.type, 'content-length': r.body.length });
  res.end(r.body);
});
server.keepAliveTimeout = 72_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
