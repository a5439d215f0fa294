'use strict';
// ferrows/metrics with prom-client: a registry scraped while ws clients send, parsed from the exposition text.
const test = require('ava');
const { Registry } = require('prom-client');
const { register, METRIC_NAMES } = require('ferrows/metrics');
const FerrowsWs = require('ferrows/ws');
const { startServer, once, connect, ask, WebSocket } = require('./helpers.js');

/** name{labels} -> value, from Prometheus's text format. */
function parse(text) {
  const values = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

test('a scrape during traffic reports connections, messages, bytes, refusals and close codes per server', async (t) => {
  const registry = new Registry();
  const sack = startServer(t, {}, (s) => { s.onconnect = (ws) => { ws.onmessage = (m) => ws.send(m); }; });
  const wss = new FerrowsWs.WebSocketServer({ port: 0, host: '127.0.0.1' });
  t.teardown(() => wss.close());
  await once(wss, 'listening');
  register(sack, registry, { name: 'chat' });
  register(wss, registry, { name: 'feed' });
  t.throws(() => register(wss, registry, { name: 'feed' }), { message: /already reported/ });

  const clients = await Promise.all([connect(sack), connect(sack)]);
  for (const ws of clients) t.is(await ask(ws, 'hello'), 'hello');
  let values = parse(await registry.metrics());
  t.is(values.get('ferrows_connections{server="chat"}'), 2);
  t.is(values.get('ferrows_connections{server="feed"}'), 0);
  t.is(values.get('ferrows_messages_received_total{server="chat"}'), 2);
  t.is(values.get('ferrows_received_bytes_total{server="chat"}'), 10);
  t.is(values.get('ferrows_messages_sent_total{server="chat"}'), 2);

  const feedClient = new WebSocket(`ws://127.0.0.1:${wss.address().port}/`);
  await once(feedClient, 'open');
  feedClient.close(4321);
  await once(feedClient, 'close');
  clients[0].close(1000);
  await once(clients[0], 'close');
  while (sack.stats().connections > 1 || wss.stats().connections > 0) await new Promise((r) => setTimeout(r, 10));
  values = parse(await registry.metrics());
  t.is(values.get('ferrows_connections{server="chat"}'), 1);
  t.is(values.get('ferrows_close_codes_received_total{server="chat",code="1000"}'), 1);
  t.is(values.get('ferrows_close_codes_received_total{server="feed",code="4321"}'), 1);
  t.is(values.get('ferrows_connections_accepted_total{server="feed"}'), 1);
  t.is(values.get('ferrows_handshakes_refused_total{server="chat",reason="limit"}'), 0);
  const text = await registry.metrics();
  t.regex(text, /# TYPE ferrows_messages_received_total counter/);
  t.regex(text, /# TYPE ferrows_connections gauge/);
  for (const name of METRIC_NAMES.filter((n) => !n.startsWith('ferrows_backplane') && !n.startsWith('ferrows_close'))) {
    t.true(text.includes(`${name}{server="chat"`), `${name} is reported`);
  }
});
