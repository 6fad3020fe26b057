// A tiny QMP client for the "by hand" baselines: connect to the unix socket, read the greeting,
// negotiate capabilities, run commands matched by id. Nothing else.
import net from 'node:net';

export class Qmp {
  #socket;
  #buf = '';
  #pending = new Map();
  #nextId = 1;
  #greeted;
  closed;

  constructor(socket) {
    this.#socket = socket;
    socket.setEncoding('utf8');
    let onGreeting;
    let onFail;
    this.#greeted = new Promise((res, rej) => {
      onGreeting = res;
      onFail = rej;
    });
    this.closed = new Promise((res) => socket.once('close', res));
    socket.on('error', (err) => onFail(err));
    socket.once('close', () => {
      onFail(new Error('QMP socket closed'));
      for (const p of this.#pending.values()) p.reject(new Error('QMP socket closed'));
      this.#pending.clear();
    });
    socket.on('data', (chunk) => {
      this.#buf += chunk;
      let nl;
      while ((nl = this.#buf.indexOf('\n')) !== -1) {
        const line = this.#buf.slice(0, nl).trim();
        this.#buf = this.#buf.slice(nl + 1);
        if (!line) continue;
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        if (msg.QMP) onGreeting(msg);
        else if (msg.id !== undefined && this.#pending.has(msg.id)) {
          const p = this.#pending.get(msg.id);
          this.#pending.delete(msg.id);
          if ('return' in msg) p.resolve(msg.return);
          else p.reject(new Error(`QMP error: ${msg.error?.desc ?? JSON.stringify(msg)}`));
        }
      }
    });
  }

  /** Connects, waits for the greeting and runs qmp_capabilities. */
  static async connect(path, timeoutMs = 5000) {
    const qmp = new Qmp(net.createConnection(path));
    let timer;
    try {
      await Promise.race([
        qmp.#greeted.then(() => qmp.execute('qmp_capabilities')),
        new Promise((_, rej) => {
          timer = setTimeout(() => rej(new Error(`QMP handshake on ${path} timed out`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      qmp.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return qmp;
  }

  execute(command, args) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#socket.write(`${JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id })}\n`);
    });
  }

  destroy() {
    this.#socket.destroy();
  }
}
