// The upload floor: a bare node:http server that streams a PUT body into a file (the same
// directory as the server's disks) and answers 201 once the file is closed; nothing else.
// Run as a forked child: argv[2] is the directory. Each upload replaces the previous file.
// Tells the parent its port over IPC and exits when the parent goes away.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const dir = process.argv[2];
const file = path.join(dir, 'upload-sink.bin');

const server = http.createServer((req, res) => {
  if (req.method !== 'PUT') {
    res.writeHead(405).end();
    return;
  }
  fs.rmSync(file, { force: true });
  pipeline(req, fs.createWriteStream(file, { mode: 0o600 })).then(
    () => {
      const body = JSON.stringify({ bytes: fs.statSync(file).size });
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    },
    (err) => res.writeHead(500).end(String(err)),
  );
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
const bye = () => {
  fs.rmSync(file, { force: true });
  process.exit(0);
};
process.on('disconnect', bye);
process.on('SIGTERM', bye);
