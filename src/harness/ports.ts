/**
 * Loopback ports for the processes the harness starts: a free one to listen on, and a wait
 * until something listens. Also the harness's `sleep`.
 */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

/** Resolves after `ms` milliseconds: the harness's one pause, shared by tests and the benchmark. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Asks the OS for a free TCP port on 127.0.0.1 (bind port 0, read it, release it). Another
 * process can take it before the caller binds it; launchers that can retry do.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address !== null && typeof address === 'object' ? resolve(address.port) : reject(new Error('could not read the port of a probe listener'))));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` now. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Resolves once 127.0.0.1:`port` accepts connections. Rejects when `child` (the process
 * expected to listen, named `what` in the message) exits first, or after `timeoutMs`.
 */
export async function waitForPort(port: number, timeoutMs: number, child?: ChildProcess, what = 'process'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${what} exited (${child.signalCode ?? `code ${child.exitCode}`}) before listening on ${port}`);
    }
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`${what}: nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}
