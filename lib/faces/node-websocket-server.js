'use strict';
// The node-websocket-server face: `require('ferrows/node-websocket-server')`. Its API (createServer, Server,
// listen, send(id), broadcast, connection ids and states) over RFC 6455 only; the draft-75/76 wire protocols it
// once spoke are obsolete and unsafe and get 426. Node's HTTP server accepts; each upgrade's socket is taken over
// by a detached native server.
const http = require('http');
const EventEmitter = require('events');
const { native, register } = require('../pump.js');
const { Handovers } = require('../takeover.js');
const { backplaneOptions, addConnectionTopics, addServerTopics, emitBackplane } = require('../topics.js');
const { limitOptions, addOperations } = require('../operations.js');

// The library's connection states.
const OPENING = 1;
const CONNECTED = 4;
const CLOSED = 5;

/** A connection; `error` events bubble to the server when nobody listens here, as the library's manager does. */
class Connection extends EventEmitter {
  constructor(server, nativeConn, req) {
    super();
    this.id = server._nextId++;
    this._server = server;
    this._native = nativeConn;
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
    return this._native.send(String(data));
  }

  send(data) { return this.write(data); }

  /** Sends to every other connected client. */
  broadcast(data) {
    for (const conn of this._server._connections.values()) if (conn !== this) conn.write(data);
  }

  close() {
    if (this._state === CLOSED) return;
    this._native.close();
  }

  reject(reason) {
    this.emit('rejected', reason);
    this._native.terminate();
  }

  // Events of the native connection. The library speaks text: binary messages are read as UTF-8.
  _onMessage(data) { this.emit('message', typeof data === 'string' ? data : Buffer.from(data).toString()); }

  _onClose() {
    this._server._connections.delete(this.id);
    this._setState(CLOSED);
    this.emit('close');
    this._server.emit('disconnect', this); // what the library's code emits...
    this._server.emit('close', this); // ...and what its README documents
  }

  _onDrain() {}
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
    this._origins = listOf(this.options.origin);
    this._subprotocols = listOf(this.options.subprotocol);
    const o = this.options;
    this._native = native.NativeServer.detached({
      address: '::', port: 0, backplane: backplaneOptions(o.backplane),
      maxBackpressure: o.maxBackpressure, closeOnBackpressureLimit: o.closeOnBackpressureLimit,
      ...limitOptions(o),
    });
    register(this._native.slot, this);
    this._handovers = new Handovers(this._native);
    this._onUpgradeEvent = (req, socket, head) => this._onHttpUpgrade(req, socket, head);
    this.server.on('upgrade', this._onUpgradeEvent);
    for (const event of ['listening', 'request', 'close', 'clientError', 'error']) {
      this.server.on(event, (...args) => this.emit(event, ...args));
    }
  }

  _allows(origin) {
    return !this._origins || this._origins.includes('*') || this._origins.includes(origin);
  }

  _onHttpUpgrade(req, socket, head) {
    if (!req.headers['sec-websocket-key']) {
      // draft-75/76 clients: refused, with the version to speak instead.
      socket.end(native.errorResponse(426, '', ['Sec-WebSocket-Version', '13']));
      return;
    }
    if (!this._allows(req.headers.origin)) {
      socket.end(native.errorResponse(403, ''));
      return;
    }
    try {
      this._handovers.hand(req, socket, head, req);
    } catch (err) {
      socket.destroy();
      this.emit('error', err);
    }
  }

  // Events of the native server.
  _onUpgrade(nativeConn) {
    const hs = nativeConn.handshake();
    const req = this._handovers.claim(hs);
    if (!req) return nativeConn.reject(400);
    const protocol = this._subprotocols ? this._subprotocols.find((p) => hs.protocols.includes(p)) : undefined;
    const conn = new Connection(this, nativeConn, req);
    register(nativeConn.slot, conn);
    conn._setState(OPENING);
    if (!nativeConn.accept(protocol)) return undefined;
    this._connections.set(conn.id, conn);
    conn._setState(CONNECTED);
    this.emit(`connection${req.url}`, conn); // URL-specific event, as the library emits
    this.emit('connection', conn);
    return undefined;
  }

  _onServerClose() {}

  listen(...args) {
    this.server.listen(...args);
    return this;
  }

  close() {
    this.emit('shutdown');
    for (const conn of this._connections.values()) conn.close();
    this._native.stopListening();
    this.server.close();
  }

  send(id, data) {
    const conn = this._connections.get(id);
    if (conn) conn.write(data);
  }

  /** Every connected client gets `data` (on every process of a backplane): one native broadcast, the frame built once. */
  broadcast(data) {
    this._native.broadcast(String(data));
  }

  /** The library's addListener-style API works because this is an EventEmitter; `manager` mirrors its name. */
  get manager() {
    return { forEach: (fn) => this._connections.forEach((c) => fn(c)), find: (id, fn) => fn(this._connections.get(id)) };
  }
}

// Additions: topics (conn.subscribe/unsubscribe/topics, server.publish) and the cross-process backplane (the
// `backplane` option and 'backplane' event); broadcast spans it.
addConnectionTopics(Connection.prototype);
addServerTopics(Server.prototype, emitBackplane, { broadcast: false });
addOperations(Server.prototype);
// drain() stops taking upgrades from the HTTP server first.
Server.prototype._beforeDrain = function beforeDrain() {
  this.server.removeListener('upgrade', this._onUpgradeEvent);
};

module.exports = { Server, createServer: (options) => new Server(options) };
