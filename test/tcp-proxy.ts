import net from 'node:net';

/**
 * A TCP forwarder a test controls, between a hubflow process and a real service: close() is an
 * outage (the port refuses connections and open ones are cut), open() brings it back on the
 * same port. The shared services themselves are never touched.
 */
export interface TcpProxy {
  port: number;
  /** host:port of this proxy, for a URL. */
  url(template: string): string;
  open(): Promise<void>;
  close(): Promise<void>;
  /** Closes for good. */
  destroy(): Promise<void>;
}

export async function tcpProxy(target: { host: string; port: number }, port = 0): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let bound = port;

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.createServer((client) => {
        const upstream = net.connect(target.port, target.host);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => socket.destroy());
        }
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
        client.pipe(upstream).pipe(client);
      });
      s.once('error', reject);
      s.listen(bound, '127.0.0.1', () => {
        const address = s.address();
        bound = typeof address === 'object' && address ? address.port : bound;
        server = s;
        resolve();
      });
    });

  const shut = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    get port() {
      return bound;
    },
    url: (template) => template.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${bound}`),
    open: async () => {
      if (!server) await listen();
    },
    close: shut,
    destroy: shut,
  };
}
