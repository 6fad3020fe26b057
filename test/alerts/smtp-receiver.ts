/**
 * Alerts (issue 14): a minimal SMTP server for tests, on 127.0.0.1 and a random port (RFC 5321's
 * plain dialogue, EHLO with AUTH PLAIN/LOGIN, no TLS offered). It records every message: the
 * envelope, the credentials it was given and the data.
 */
import net from 'node:net';

export interface Mail {
  from: string;
  to: string[];
  auth: { user: string; pass: string } | null;
  data: string;
}

export class SmtpReceiver {
  readonly mails: Mail[] = [];
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  async start(): Promise<this> {
    this.server = net.createServer((sock) => this.session(sock));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  private session(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined);
    const say = (line: string) => sock.write(`${line}\r\n`);
    let buf = '';
    let mode: 'cmd' | 'data' | 'login-user' | 'login-pass' = 'cmd';
    let cur: Mail = { from: '', to: [], auth: null, data: '' };
    let auth: Mail['auth'] = null;
    let loginUser = '';
    say('220 test SMTP ready');
    sock.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      if (buf.length > 1 << 20) sock.destroy();
      for (;;) {
        if (mode === 'data') {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          cur.data = buf.slice(0, end);
          buf = buf.slice(end + 5);
          this.mails.push({ ...cur, auth });
          cur = { from: '', to: [], auth: null, data: '' };
          mode = 'cmd';
          say('250 OK queued');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (mode === 'login-user') {
          loginUser = Buffer.from(line, 'base64').toString();
          mode = 'login-pass';
          say('334 UGFzc3dvcmQ6');
          continue;
        }
        if (mode === 'login-pass') {
          auth = { user: loginUser, pass: Buffer.from(line, 'base64').toString() };
          mode = 'cmd';
          say('235 2.7.0 Authentication successful');
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') {
          sock.write('250-test greets you\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n');
        } else if (verb === 'HELO') say('250 test');
        else if (verb === 'AUTH') {
          const [, mech, initial] = line.split(' ');
          if (mech?.toUpperCase() === 'PLAIN' && initial) {
            const [, user, pass] = Buffer.from(initial, 'base64').toString().split('\0');
            auth = { user: user ?? '', pass: pass ?? '' };
            say('235 2.7.0 Authentication successful');
          } else if (mech?.toUpperCase() === 'LOGIN') {
            mode = 'login-user';
            say('334 VXNlcm5hbWU6');
          } else say('504 unsupported');
        } else if (verb === 'MAIL') {
          cur.from = /<([^>]*)>/.exec(line)?.[1] ?? '';
          say('250 OK');
        } else if (verb === 'RCPT') {
          cur.to.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
          say('250 OK');
        } else if (verb === 'DATA') {
          mode = 'data';
          say('354 end with <CRLF>.<CRLF>');
        } else if (verb === 'QUIT') {
          say('221 bye');
          sock.end();
        } else if (verb === 'RSET' || verb === 'NOOP') say('250 OK');
        else say('502 not implemented');
      }
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
