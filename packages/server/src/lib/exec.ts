import { spawn } from 'node:child_process';

interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program with an argv array (never a shell) and collects its output.
 * `input`, when given, is written to its stdin. Output beyond `maxOutput` bytes per stream is dropped so a chatty program cannot eat memory.
 */
export function run(
  file: string,
  args: readonly string[],
  opts: {
    timeoutMs?: number;
    maxOutput?: number;
    env?: NodeJS.ProcessEnv;
    input?: string;
    /** Aborting it kills the program (SIGKILL); the result then carries that signal. */
    signal?: AbortSignal;
    /** Each chunk of stdout as it arrives (progress output). */
    onStdout?: (chunk: string) => void;
  } = {},
): Promise<ExecResult> {
  const maxOutput = opts.maxOutput ?? 1 << 20;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => undefined); // a program that exits without reading
      child.stdin!.end(opts.input);
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout!.on('data', (b: Buffer) => {
      opts.onStdout?.(b.toString('utf8'));
      if (outLen < maxOutput) out.push(b);
      outLen += b.length;
    });
    child.stderr!.on('data', (b: Buffer) => {
      if (errLen < maxOutput) err.push(b);
      errLen += b.length;
    });
    const timer = opts.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs).unref()
      : undefined;
    const abort = () => child.kill('SIGKILL');
    if (opts.signal?.aborted) abort();
    else opts.signal?.addEventListener('abort', abort, { once: true });
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', abort);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', abort);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

/** Quotes an argv for display as a POSIX shell command line (for showing, never for running). */
export function shellQuote(argv: readonly string[]): string {
  return argv
    .map((a) => (a !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}
