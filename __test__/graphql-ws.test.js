'use strict';
// graphql-ws on ferrows/ws: its `useServer` takes the ws server instance; its own client (over ws's client) speaks
// the graphql-transport-ws protocol to it. Each scenario runs on ws too, which must agree.
const test = require('ava');
const WebSocket = require('ws');
const FerrowsWs = require('ferrows/ws');
const { buildSchema } = require('graphql');
const { useServer } = require('graphql-ws/use/ws');
const { createClient } = require('graphql-ws');
const { once } = require('./helpers.js');

const schema = buildSchema(`
  type Query { hello(name: String!): String! }
  type Subscription { countdown(from: Int!): Int! }
`);
const roots = {
  query: { hello: ({ name }) => `hello ${name}` },
  subscription: {
    countdown: async function* countdown({ from }) {
      for (let i = from; i >= 0; i--) yield { countdown: i };
    },
  },
};

for (const [name, Impl] of [['ferrows/ws', FerrowsWs], ['ws', WebSocket]]) {
  test(`graphql-ws on ${name}: a query, a subscription to its end, the subprotocol, dispose`, async (t) => {
    const wss = new Impl.WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    const connected = [];
    const server = useServer({ schema, roots, onConnect: (ctx) => { connected.push(ctx.extra.socket.protocol); } }, wss);
    t.teardown(() => server.dispose());
    const client = createClient({ url: `ws://127.0.0.1:${wss.address().port}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false }); // one connection for all
    const query = await new Promise((resolve, reject) => {
      let result;
      client.subscribe({ query: '{ hello(name: "ferrows") }' }, { next: (r) => { result = r; }, error: reject, complete: () => resolve(result) });
    });
    t.deepEqual(query, { data: { hello: 'hello ferrows' } });
    const counted = [];
    for await (const result of client.iterate({ query: 'subscription { countdown(from: 3) }' })) counted.push(result.data.countdown);
    t.deepEqual(counted, [3, 2, 1, 0]);
    t.deepEqual(connected, ['graphql-transport-ws']);
    await client.dispose();
    while (wss.clients.size) await new Promise((r) => setTimeout(r, 10));
    t.pass('the connection closed when the client was disposed');
  });
}
