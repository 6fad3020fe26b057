// A small in-memory stand-in for the API server, for UI development and screenshots without QEMU.
// Usage: node packages/web/dev/fake-api.mjs [port]   (serves packages/web/dist too, SPA fallback)
// Not used by the real e2e tests, which run the real server.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const port = Number(process.argv[2] ?? process.env.PORT ?? 5055);
const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const now = () => new Date().toISOString();
const vms = new Map();
const disks = new Map();
const isos = new Map();
const clients = new Set();
let nextPort = 5900;

function emit(type, payload) {
  const data = JSON.stringify({ type, ...payload });
  for (const res of clients) res.write(`event: ${type}\ndata: ${data}\n\n`);
}
function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}
const fail = (res, status, error, code) => send(res, status, { error, timestamp: now(), code });
async function json(req) {
  let s = '';
  for await (const c of req) s += c;
  return s ? JSON.parse(s) : {};
}
function makeVm(name, cpus, memory, extra = {}) {
  const vm = { id: randomUUID(), name, cpus, memory, status: 'stopped', vnc_port: nextPort++, disks: [], iso: null, createdAt: now(),
    mac: `52:54:00:${Math.floor(Math.random() * 256).toString(16).padStart(2, '0')}:12:34`, lastCommand: null, startedAt: null, pid: null, ...extra };
  vms.set(vm.id, vm);
  return vm;
}
function makeDisk(name, size, format, extra = {}) {
  const d = { id: randomUUID(), name, size, format, path: `/var/lib/qemu-manager/disks/${name}.${format}`, status: 'ready', createdAt: now(),
    createdAtCompleted: now(), error: null, attachedTo: null, ...extra };
  disks.set(d.id, d);
  return d;
}
const update = (vm, patch) => (Object.assign(vm, patch), emit('vm.updated', { vm }), vm);
const cmd = (vm) => `qemu-system-x86_64 -name guest=${vm.name} -machine q35 -accel tcg -cpu max -smp ${vm.cpus} -m ${vm.memory} -nodefaults -display none -vnc 127.0.0.1:${vm.vnc_port - 5900} -device VGA ` +
  vm.disks.map((d, i) => `-blockdev {"driver":"qcow2","node-name":"d${i}","file":{"driver":"file","filename":"${d.path}"}} -device virtio-blk-pci,drive=d${i}`).join(' ') +
  ` -netdev user,id=n0 -device virtio-net-pci,netdev=n0,mac=${vm.mac} -qmp unix:/var/lib/qemu-manager/run/${vm.id}/qmp.sock`;

// Seed data for screenshots.
const d1 = makeDisk('web-disk', 20, 'qcow2', { attachedTo: null });
const d2 = makeDisk('db-disk', 40, 'raw');
makeDisk('scratch', 8, 'qcow2');
makeDisk('broken', 10, 'vmdk', { status: 'error', error: 'qemu-img: Could not create image: No space left on device', createdAtCompleted: null });
const web = makeVm('web', 2, 2048);
web.disks.push({ path: d1.path, attachedAt: now(), format: 'qcow2', diskId: d1.id });
d1.attachedTo = web.id;
Object.assign(web, { status: 'running', startedAt: new Date(Date.now() - 3600_000 * 2.2).toISOString(), pid: 4242, iso: '/var/lib/qemu-manager/isos/debian-12.5.0-amd64-netinst.iso' });
web.lastCommand = cmd(web);
const db = makeVm('db', 4, 8192);
db.disks.push({ path: d2.path, attachedAt: now(), format: 'raw', diskId: d2.id });
d2.attachedTo = db.id;
makeVm('build-runner', 1, 512);
const paused = makeVm('win-test', 2, 4096, { status: 'paused', startedAt: new Date(Date.now() - 600_000).toISOString(), pid: 4343 });
paused.lastCommand = cmd(paused);
for (const [name, size] of [['debian-12.5.0-amd64-netinst.iso', 659554304], ['alpine-virt-3.20.iso', 62914560], ['testguest.iso', 11534336]]) {
  isos.set(name, { name, path: `/var/lib/qemu-manager/isos/${name}`, size, modifiedAt: now() });
}

// API tokens and the audit log (every non-GET request is recorded, as the real server does).
const tokens = new Map();
const audit = [];
const ago = (ms) => new Date(Date.now() - ms).toISOString();
function addToken(name, scope, extra = {}) {
  const tok = { id: randomUUID(), name, scope, createdAt: now(), expiresAt: null, lastUsedAt: null, revokedAt: null, ...extra };
  tokens.set(tok.id, tok);
  return tok;
}
function record(actor, action, target, status, at = now()) {
  audit.push({ id: audit.length + 1, at, actor, ip: '127.0.0.1', action, target, status });
}
const ci = addToken('ci deploy', 'admin', { createdAt: ago(86400_000 * 12), expiresAt: ago(-86400_000 * 78), lastUsedAt: ago(7200_000) });
addToken('grafana', 'read', { createdAt: ago(86400_000 * 40), expiresAt: ago(86400_000 * 10) });
addToken('old laptop', 'admin', { createdAt: ago(86400_000 * 90), revokedAt: ago(86400_000 * 3) });
record('anonymous', 'POST /api/auth/login', null, 200, ago(5400_000));
record('session:admin', 'POST /api/tokens', null, 201, ago(5300_000));
record(`token:${ci.name}`, 'POST /api/vms/:vm_id/start', web.id, 200, ago(4000_000));
record(`token:${ci.name}`, 'POST /api/vms/:vm_id/start', web.id, 409, ago(3900_000));
record('session:admin', 'POST /api/disks', null, 201, ago(1800_000));
record('ticket', 'CONSOLE /api/vnc/:vm_id', web.id, 101, ago(600_000));
record('session:admin', 'DELETE /api/tokens/:id', [...tokens.values()][2].id, 200, ago(300_000));
const auditRoute = (m, path) =>
  `${m} /api${path.replace(/^\/vms\/[^/]+/, '/vms/:vm_id').replace(/^\/disks\/[^/]+/, '/disks/:disk_id').replace(/^\/isos\/[^/]+/, '/isos/:name').replace(/^\/tokens\/[^/]+/, '/tokens/:id')}`;

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(req, res, path) {
  const m = req.method;
  let g;
  if (path === '/health') return send(res, 200, { status: 'ok', timestamp: now(), version: '0.1.0-fake', qemu: { version: '7.2.15', accel: 'tcg', accelReason: 'fake server' }, host: { cpus: 8, memoryMiB: 15872 } });
  if (path === '/auth/status') return send(res, 200, { authRequired: false, authenticated: true, actor: 'local', scope: 'admin' });
  if ((g = path.match(/^\/vms\/([^/]+)\/console$/)) && m === 'POST') {
    const vm = vms.get(g[1]);
    if (!vm) return fail(res, 404, 'VM not found', 'VM_NOT_FOUND');
    if (vm.status !== 'running' && vm.status !== 'paused') return fail(res, 409, 'The VM is not running', 'VM_NOT_RUNNING');
    return send(res, 200, { ticket: randomUUID(), expiresAt: new Date(Date.now() + 30_000).toISOString() });
  }
  if (path === '/events') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.write(': hello\n\n');
    clients.add(res);
    req.on('close', () => clients.delete(res));
    return;
  }
  if (path === '/tokens' && m === 'GET') return send(res, 200, { tokens: [...tokens.values()] });
  if (path === '/tokens' && m === 'POST') {
    const b = await json(req);
    const tok = addToken(b.name, b.scope, { expiresAt: b.expiresIn ? new Date(Date.now() + b.expiresIn * 1000).toISOString() : null });
    return send(res, 201, { token: `qm_${randomUUID().replaceAll('-', '')}`, id: tok.id, name: tok.name, scope: tok.scope, createdAt: tok.createdAt, expiresAt: tok.expiresAt });
  }
  if ((g = path.match(/^\/tokens\/([^/]+)$/)) && m === 'DELETE') {
    const tok = tokens.get(g[1]);
    if (!tok || tok.revokedAt) return fail(res, 404, 'Token not found', 'TOKEN_NOT_FOUND');
    tok.revokedAt = now();
    return send(res, 200, { message: 'Token revoked' });
  }
  if (path === '/audit' && m === 'GET') {
    const q = new URL(req.url, 'http://x').searchParams;
    const before = Number(q.get('before') ?? Infinity);
    return send(res, 200, { entries: audit.filter((e) => e.id < before).reverse().slice(0, Number(q.get('limit') ?? 100)) });
  }
  if (path === '/vms' && m === 'GET') return send(res, 200, { vms: [...vms.values()] });
  if (path === '/vms' && m === 'POST') {
    const b = await json(req);
    if ([...vms.values()].some((v) => v.name === b.name)) return fail(res, 409, `A VM named "${b.name}" already exists`, 'NAME_TAKEN');
    const vm = makeVm(b.name, b.cpus, b.memory);
    emit('vm.created', { vm });
    return send(res, 201, { vm });
  }
  if ((g = path.match(/^\/vms\/([^/]+)(\/.*)?$/))) {
    const vm = vms.get(g[1]);
    if (!vm) return fail(res, 404, 'VM not found', 'VM_NOT_FOUND');
    const rest = g[2] ?? '';
    if (rest === '' && m === 'GET') return send(res, 200, { vm });
    if (rest === '' && m === 'DELETE') {
      if (vm.status !== 'stopped') return fail(res, 409, 'The VM is running; stop it first or use ?force=true', 'VM_NOT_STOPPED');
      vms.delete(vm.id);
      for (const d of disks.values()) if (d.attachedTo === vm.id) (d.attachedTo = null), emit('disk.updated', { disk: d });
      emit('vm.deleted', { id: vm.id });
      return send(res, 200, { message: 'VM deleted successfully' });
    }
    const body = m === 'POST' || m === 'PATCH' ? await json(req) : {};
    switch (rest) {
      case '/start':
        if (vm.status !== 'stopped') return fail(res, 409, 'VM is not stopped', 'VM_NOT_STOPPED');
        update(vm, { status: 'starting' });
        await delay(700);
        update(vm, { status: 'running', startedAt: now(), pid: 5000 + Math.floor(Math.random() * 1000) });
        update(vm, { lastCommand: cmd(vm) });
        return send(res, 200, { vm, command: vm.lastCommand });
      case '/stop':
        update(vm, { status: 'stopped', startedAt: null, pid: null });
        return send(res, 200, { message: 'VM stopped successfully' });
      case '/shutdown':
        if (vm.status !== 'running') return fail(res, 409, 'VM is not running', 'VM_NOT_RUNNING');
        update(vm, { status: 'stopping' });
        await delay(1500);
        return send(res, 200, { vm: update(vm, { status: 'stopped', startedAt: null, pid: null }) });
      case '/reboot': case '/reset':
        return send(res, 200, { vm });
      case '/pause':
        return send(res, 200, { vm: update(vm, { status: 'paused' }) });
      case '/resume':
        return send(res, 200, { vm: update(vm, { status: 'running' }) });
      case '/resources':
        if (vm.status !== 'stopped') return fail(res, 409, 'VM must be stopped to change resources', 'VM_NOT_STOPPED');
        return send(res, 200, { vm: update(vm, { cpus: body.cpus ?? vm.cpus, memory: body.memory ?? vm.memory }) });
      case '/disks/attach': {
        if (vm.status !== 'stopped') return fail(res, 409, 'VM must be stopped to attach disks', 'VM_NOT_STOPPED');
        const d = [...disks.values()].find((x) => x.path === body.diskPath);
        if (!d) return fail(res, 404, 'Disk file not found', 'FILE_NOT_FOUND');
        if (d.attachedTo) return fail(res, 409, 'Disk is attached to another VM', 'DISK_IN_USE');
        d.attachedTo = vm.id;
        emit('disk.updated', { disk: d });
        return send(res, 200, { vm: update(vm, { disks: [...vm.disks, { path: d.path, attachedAt: now(), format: d.format, diskId: d.id }] }) });
      }
      case '/disks/detach': {
        if (vm.status !== 'stopped') return fail(res, 409, 'VM must be stopped to detach disks', 'VM_NOT_STOPPED');
        const d = [...disks.values()].find((x) => x.path === body.diskPath);
        if (d) (d.attachedTo = null), emit('disk.updated', { disk: d });
        return send(res, 200, { vm: update(vm, { disks: vm.disks.filter((x) => x.path !== body.diskPath) }) });
      }
      case '/iso/mount':
        return send(res, 200, { vm: update(vm, { iso: body.isoPath }) });
      case '/iso/unmount':
        return send(res, 200, { vm: update(vm, { iso: null }) });
    }
  }
  if (path === '/disks' && m === 'GET') return send(res, 200, { disks: [...disks.values()] });
  if (path === '/disks' && m === 'POST') {
    const b = await json(req);
    if ([...disks.values()].some((d) => d.name === b.name)) return fail(res, 409, `A disk named "${b.name}" already exists`, 'NAME_TAKEN');
    const d = makeDisk(b.name, b.size, b.format, { status: 'creating', createdAtCompleted: null });
    emit('disk.created', { disk: d });
    setTimeout(() => {
      Object.assign(d, { status: 'ready', createdAtCompleted: now() });
      emit('disk.updated', { disk: d });
    }, 1500);
    return send(res, 201, { disk: d });
  }
  if ((g = path.match(/^\/disks\/([^/]+)$/))) {
    const d = disks.get(g[1]);
    if (!d) return fail(res, 404, 'Disk not found', 'DISK_NOT_FOUND');
    if (m === 'DELETE') {
      if (d.attachedTo) return fail(res, 409, 'Disk is attached to a VM', 'DISK_IN_USE');
      disks.delete(d.id);
      emit('disk.deleted', { id: d.id });
      return send(res, 200, { message: 'Disk deleted successfully' });
    }
    const info = d.status === 'ready' ? { 'virtual-size': d.size * 1024 ** 3, filename: d.path, format: d.format, 'actual-size': d.format === 'raw' ? d.size * 1024 ** 3 : 200704, 'dirty-flag': false, 'cluster-size': 65536 } : undefined;
    return send(res, 200, { disk: { ...d, ...(info ? { info } : {}) } });
  }
  if (path === '/isos' && m === 'GET') return send(res, 200, { isos: [...isos.values()] });
  if ((g = path.match(/^\/isos\/([^/]+)$/)) && m === 'DELETE') {
    const iso = isos.get(decodeURIComponent(g[1]));
    if (!iso) return fail(res, 404, 'ISO not found', 'NOT_FOUND');
    if ([...vms.values()].some((v) => v.iso === iso.path)) return fail(res, 409, 'The ISO is in the drive of a VM', 'ISO_IN_USE');
    isos.delete(iso.name);
    emit('iso.changed', {});
    return send(res, 200, { message: 'ISO deleted successfully' });
  }
  if ((g = path.match(/^\/isos\/([^/]+)$/)) && m === 'PUT') {
    const name = decodeURIComponent(g[1]);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.iso$/.test(name)) return fail(res, 400, 'Invalid ISO name', 'VALIDATION');
    if (isos.has(name)) return fail(res, 409, 'An ISO with this name already exists', 'NAME_TAKEN');
    let size = 0;
    for await (const c of req) {
      size += c.length;
      await delay(5);
    }
    const iso = { name, path: `/var/lib/qemu-manager/isos/${name}`, size, modifiedAt: now() };
    isos.set(name, iso);
    emit('iso.changed', {});
    return send(res, 201, { iso });
  }
  return fail(res, 404, 'Not found', 'NOT_FOUND');
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  try {
    if (url.pathname.startsWith('/api/')) {
      const path = url.pathname.slice(4);
      if (req.method !== 'GET') res.on('finish', () => record('local', auditRoute(req.method, path), path.match(/^\/(?:vms|disks|isos|tokens)\/([^/]+)/)?.[1] ?? null, res.statusCode));
      return await api(req, res, path);
    }
    let file = normalize(join(dist, url.pathname));
    if (!file.startsWith(dist) || !(await stat(file).catch(() => null))?.isFile()) file = join(dist, 'index.html');
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(await readFile(file));
  } catch (err) {
    fail(res, 500, String(err), 'INTERNAL');
  }
});

// Optional: FAKE_VNC_TARGET=127.0.0.1:5990 relays /api/vnc/:id (for running VMs) to a real VNC
// server, e.g. a QEMU started by hand, to try the console without the real API server.
if (process.env.FAKE_VNC_TARGET) {
  const { WebSocketServer } = await import('ws');
  const { connect } = await import('node:net');
  const [vncHost, vncPort] = process.env.FAKE_VNC_TARGET.split(':');
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const id = new URL(req.url, 'http://x').pathname.match(/^\/api\/vnc\/([^/]+)$/)?.[1];
    const vm = id && vms.get(id);
    if (!vm || vm.status === 'stopped') {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const tcp = connect(Number(vncPort), vncHost);
      tcp.on('data', (d) => ws.send(d));
      ws.on('message', (d) => tcp.write(d));
      tcp.on('close', () => ws.close());
      tcp.on('error', () => ws.close());
      ws.on('close', () => tcp.destroy());
    });
  });
}
server.listen(port, '127.0.0.1', () => console.log(`fake api on http://127.0.0.1:${port}`));
