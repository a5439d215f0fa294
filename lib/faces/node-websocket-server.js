'use strict';
// The node-websocket-server face: `require('ferrows/node-websocket-server')`. Its API (createServer, Server,
// listen, send(id), broadcast, connection ids and states) over RFC 6455 only; the draft-75/76 wire protocols it
// once spoke are obsolete and unsafe and get 426. Sockets are taken over natively through the ws face.
const http = require('http');
const EventEmitter = require('events');
const { WebSocketServer } = require('./ws.js');
const { addConnectionTopics, addServerTopics } = require('../topics.js');

// The library's connection states.
const OPENING = 1;
const CONNECTED = 4;
const CLOSED = 5;

/** A connection; `error` events bubble to the server when nobody listens here, as the library's manager does. */
class Connection extends EventEmitter {
  constructor(server, ws, req) {
    super();
    this.id = server._nextId++;
    this._server = server;
    this._ws = ws;
    this._req = req;
    this._state = 0;
    this.version = 'rfc6455';
  }

  get readyState() { return this._state; }

  _setState(state) {
    const previous = this._state;
    this._state = state;
    this.emit('stateChange', state, previous);
  }

  emit(event, ...args) {
    if (event === 'error' && this.listenerCount('error') === 0) return this._server.emit('error', ...args);
    return super.emit(event, ...args);
  }

  getVersion() { return this.version; }

  /** Sends text; false when the connection is not connected. */
  write(data) {
    if (this._state !== CONNECTED) return false;
    this._ws.send(String(data));
    return true;
  }

  send(data) { return this.write(data); }

  /** Sends to every other connected client. */
  broadcast(data) {
    for (const conn of this._server._connections.values()) if (conn !== this) conn.write(data);
  }

  close() {
    if (this._state === CLOSED) return;
    this._ws.close();
  }

  reject(reason) {
    this.emit('rejected', reason);
    this._ws.terminate();
  }
}

function listOf(option) {
  return option === undefined || option === null ? null : [].concat(option).map(String);
}

class Server extends EventEmitter {
  constructor(options = {}) {
    super();
    this.options = { debug: false, ...options };
    this.server = this.options.server || new http.Server();
    this._nextId = 1; // never reused within a server's life
    this._connections = new Map();
    const origins = listOf(this.options.origin);
    const subprotocols = listOf(this.options.subprotocol);
    this._wss = new WebSocketServer({
      noServer: true,
      backplane: this.options.backplane,
      maxBackpressure: this.options.maxBackpressure, closeOnBackpressureLimit: this.options.closeOnBackpressureLimit,
      verifyClient: origins ? (info) => origins.includes('*') || origins.includes(info.origin) : null,
      handleProtocols: (offered) => (subprotocols ? subprotocols.find((p) => offered.has(p)) || false : false),
    });
    this.server.on('upgrade', (req, socket, head) => {
      if (!req.headers['sec-websocket-key']) {
        // draft-75/76 clients: refused, with the version to speak instead.
        socket.end('HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      if (origins && !origins.includes('*') && !origins.includes(req.headers.origin)) {
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this._wss.handleUpgrade(req, socket, head, (ws) => this._attach(ws, req));
    });
    this._wss.on('backplane', (state, err) => this.emit('backplane', state, err));
    for (const event of ['listening', 'request', 'close', 'clientError', 'error']) {
      this.server.on(event, (...args) => this.emit(event, ...args));
    }
  }

  _attach(ws, req) {
    const conn = new Connection(this, ws, req);
    conn._setState(OPENING);
    ws.on('message', (data) => conn.emit('message', String(data)));
    ws.on('close', () => {
      this._connections.delete(conn.id);
      conn._setState(CLOSED);
      conn.emit('close');
      this.emit('disconnect', conn); // what the library's code emits...
      this.emit('close', conn); // ...and what its README documents
    });
    this._connections.set(conn.id, conn);
    conn._setState(CONNECTED);
    this.emit(`connection${req.url}`, conn); // URL-specific event, as the library emits
    this.emit('connection', conn);
  }

  listen(...args) {
    this.server.listen(...args);
    return this;
  }

  close() {
    this.emit('shutdown');
    for (const conn of this._connections.values()) conn.close();
    this._wss.close();
    this.server.close();
  }

  send(id, data) {
    const conn = this._connections.get(id);
    if (conn) conn.write(data);
  }

  /** Every connected client gets `data` (on every process of a backplane): one native broadcast, the frame built once. */
  broadcast(data) {
    this._wss._native.broadcast(String(data));
  }

  /** The library's addListener-style API works because this is an EventEmitter; `manager` mirrors its name. */
  get manager() {
    return { forEach: (fn) => this._connections.forEach((c) => fn(c)), find: (id, fn) => fn(this._connections.get(id)) };
  }
}

// Additions: topics (conn.subscribe/unsubscribe/topics, server.publish) and the cross-process backplane (the
// `backplane` option and 'backplane' event); broadcast spans it.
addConnectionTopics(Connection.prototype, (conn) => conn._ws._native);
addServerTopics(Server.prototype, null, { broadcast: false, nativeOf: (server) => server._wss._native });

module.exports = { Server, createServer: (options) => new Server(options) };
