// The metrics server: GET /metrics (Prometheus text format), /healthz (alive, event loop responsive),
// /readyz (accepting files); anything else 404. Plain node:http, bound to loopback by default.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { SluiceError } from '../errors.js';

export interface MetricsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** True once the daemon accepts files; false while starting or draining. */
  ready: () => boolean;
}

/** The event loop is "responsive" while its p99 delay stays under this. */
const MAX_LOOP_DELAY_MS = 2000;

/**
 * Connections held at most. One more makes an idle one (no request in progress) close, see
 * limitConnections: open idle connections never use up the process's file descriptors, and a probe
 * arriving among them gets through.
 */
const MAX_CONNECTIONS = 128;

export class MetricsServer {
  private readonly loop = monitorEventLoopDelay({ resolution: 20 });

  private constructor(
    private readonly server: Server,
    readonly address: { host: string; port: number },
  ) {}

  /** Listens; a port in use is a clear SluiceError (METRICS_PORT_IN_USE), not a crash. */
  static async start(options: MetricsServerOptions): Promise<MetricsServer> {
    let instance: MetricsServer | undefined;
    // slow or silent clients are cut off: headers within 5 s, a whole request within 10 s, 5 s idle between requests
    const server = createServer({ headersTimeout: 5000, requestTimeout: 10_000, keepAliveTimeout: 5000, connectionsCheckingInterval: 1000 }, (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics') {
        options.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(err)}\n`),
        );
      } else if (path === '/healthz') {
        const delayMs = instance === undefined ? 0 : instance.loop.percentile(99) / 1e6;
        const ok = delayMs < MAX_LOOP_DELAY_MS;
        instance?.loop.reset();
        res
          .writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
          .end(`${JSON.stringify({ status: ok ? 'ok' : 'event loop stalled', eventLoopDelayP99Ms: Math.round(delayMs) })}\n`);
      } else if (path === '/readyz') {
        const ready = options.ready();
        res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify({ status: ready ? 'ready' : 'not ready' })}\n`);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /readyz\n');
      }
    });
    limitConnections(server, MAX_CONNECTIONS);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'EADDRINUSE'
            ? new SluiceError(
                'METRICS_PORT_IN_USE',
                `metrics.port: ${options.host}:${options.port} is already in use (choose another with --metrics-port, or 0 to turn the server off)`,
                { field: 'metrics.port' },
              )
            : new SluiceError('METRICS_LISTEN_FAILED', `metrics server cannot listen on ${options.host}:${options.port}: ${err.message}`, {
                field: 'metrics.host',
                cause: err,
              }),
        );
      });
      server.listen(options.port, options.host, () => resolve());
    });
    const addr = server.address() as { address: string; port: number };
    instance = new MetricsServer(server, { host: addr.address, port: addr.port });
    instance.loop.enable();
    return instance;
  }

  async close(): Promise<void> {
    this.loop.disable();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Keeps at most `max` connections. One more closes, in this order of preference: the oldest connection that
 * has been silent (no request yet) for longer than a moment; else the oldest idle keep-alive one; else the
 * oldest silent one. One in a request is never closed, and the newcomer only when every other is: a probe
 * arriving after a flood gets through, and one arriving before it has sent its request by the time the
 * flood reaches it.
 */
function limitConnections(server: Server, max: number): void {
  const GRACE_MS = 200;
  const idle = new Map<Socket, { since: number; used: boolean }>(); // in the order they became idle
  const evicted = new WeakSet<Socket>();
  let open = 0;
  const evict = (socket: Socket): void => {
    idle.delete(socket);
    // its close event comes later: counted gone now
    evicted.add(socket);
    open--;
    socket.destroy();
  };
  server.on('connection', (socket: Socket) => {
    open++;
    idle.set(socket, { since: Date.now(), used: false });
    socket.once('close', () => {
      idle.delete(socket);
      if (!evicted.has(socket)) open--;
    });
    if (open <= max) return;
    const now = Date.now();
    // the oldest silent one past the grace; else the oldest idle keep-alive one; else the oldest silent
    // one however young: the newcomer is the likeliest real client (a flood is older than the probe in it)
    let used: Socket | undefined;
    let young: Socket | undefined;
    let victim: Socket | undefined;
    for (const [s, st] of idle) {
      if (s === socket) continue;
      if (!st.used && now - st.since > GRACE_MS) {
        victim = s;
        break;
      }
      if (st.used) used ??= s;
      else young ??= s;
    }
    evict(victim ?? used ?? young ?? socket);
  });
  server.on('request', (req, res) => {
    idle.delete(req.socket);
    res.once('finish', () => {
      if (!req.socket.destroyed) idle.set(req.socket, { since: Date.now(), used: true });
    });
  });
  // idle sockets also end by the timeouts above; a server's own idle timeout covers a silent one
  server.timeout = 30_000;
}
