'use strict';
// Prometheus metrics with prom-client (the Node ecosystem's standard client, an optional peer dependency):
// `require('ferrows/metrics').register(server, registry?, { name })` adds collectors that read `server.stats()`
// (one native call) on each scrape. Several servers can share a registry: the `server` label tells them apart.

let promClient;
function client() {
  if (!promClient) {
    try {
      promClient = require('prom-client');
    } catch (err) {
      throw new Error("ferrows/metrics needs the prom-client package: npm install prom-client", { cause: err });
    }
  }
  return promClient;
}

/** name, help, what it reads from stats(), and the labels beyond `server`. Counters end in _total. */
const METRICS = [
  ['ferrows_connections', 'WebSocket connections open (pending upgrades included)', (s) => s.connections, 'gauge'],
  ['ferrows_connections_accepted_total', 'WebSocket connections accepted', (s) => s.accepted],
  ['ferrows_handshakes_refused_total', 'Upgrades refused, by reason (invalid, limit, application, closing)',
    (s) => Object.entries(s.refused).map(([reason, n]) => [{ reason }, n])],
  ['ferrows_messages_received_total', 'Messages received', (s) => s.messagesIn],
  ['ferrows_received_bytes_total', 'Bytes of messages received', (s) => s.bytesIn],
  ['ferrows_messages_sent_total', 'Messages sent', (s) => s.messagesOut],
  ['ferrows_sent_bytes_total', 'Bytes of messages sent (before compression)', (s) => s.bytesOut],
  ['ferrows_frames_compressed_total', 'Messages sent compressed (permessage-deflate)', (s) => s.framesCompressed],
  ['ferrows_compression_saved_bytes_total', 'Bytes compression saved', (s) => s.bytesSaved],
  ['ferrows_backpressure_pauses_total', 'Times a connection stopped being read: its queue was over maxBackpressure', (s) => s.backpressurePauses],
  ['ferrows_rate_limit_pauses_total', 'Times a connection stopped being read: it was over its rate limit', (s) => s.rateLimited],
  ['ferrows_broadcast_skipped_total', 'Deliveries broadcasts and publications skipped (queue over broadcastLimit)', (s) => s.skipped],
  ['ferrows_close_codes_sent_total', 'Close frames this server started, by code',
    (s) => s.closeCodesSent.map(({ code, count }) => [{ code: String(code) }, count])],
  ['ferrows_close_codes_received_total', 'Close frames received, by code',
    (s) => s.closeCodesReceived.map(({ code, count }) => [{ code: String(code) }, count])],
  ['ferrows_backplane_up', '1 when the Redis backplane is connected, 0 when not', (s) => s.backplane && Number(s.backplane.state === 'up'), 'gauge'],
  ['ferrows_backplane_queued_bytes', 'Bytes of publications waiting for Redis', (s) => s.backplane && s.backplane.queuedBytes, 'gauge'],
  ['ferrows_backplane_dropped_total', 'Publications dropped while Redis was unreachable and the queue full', (s) => s.backplane && s.backplane.dropped],
];

const LABELS = {
  ferrows_handshakes_refused_total: ['reason'],
  ferrows_close_codes_sent_total: ['code'],
  ferrows_close_codes_received_total: ['code'],
};

/** Per registry: the servers it reports, by name. */
const servers = new WeakMap();

function addMetrics(prom, registry, reported) {
  for (const [name, help, read, type] of METRICS) {
    const Metric = type === 'gauge' ? prom.Gauge : prom.Counter;
    // eslint-disable-next-line no-new
    new Metric({
      name, help, registers: [registry], labelNames: ['server', ...(LABELS[name] || [])],
      collect() {
        this.reset();
        for (const [serverName, server] of reported) {
          const value = read(server.stats());
          if (value === undefined || value === null) continue;
          const samples = Array.isArray(value) ? value : [[{}, value]];
          for (const [labels, n] of samples) {
            if (type === 'gauge') this.set({ server: serverName, ...labels }, n);
            else this.inc({ server: serverName, ...labels }, n);
          }
        }
      },
    });
  }
}

/** Reports `server` (any face's server: it has stats()) in `registry` (prom-client's default one if absent). */
function register(server, registry, { name = 'default' } = {}) {
  if (!server || typeof server.stats !== 'function') throw new TypeError('register(server): a ferrows server (with stats()) is needed');
  const prom = client();
  const target = registry || prom.register;
  let reported = servers.get(target);
  if (!reported) {
    reported = new Map();
    servers.set(target, reported);
    addMetrics(prom, target, reported);
  }
  if (reported.has(name)) throw new Error(`register(): a server named '${name}' is already reported in this registry`);
  reported.set(name, server);
  return () => reported.delete(name);
}

module.exports = { register, METRIC_NAMES: METRICS.map(([name]) => name) };
