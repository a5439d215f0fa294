'use strict';
// The sack.vfs-style face: `WebSocket.Server`, as sack.vfs's websocket_module.cc behaves, over the native core.

const cluster = require('cluster');
const { native, register, unregister } = require('../pump.js');
const { handleRequest, splitTarget, headersObject, socketInfo } = require('../http.js');
const { asPayload } = require('../payload.js');
const { backplaneOptions, addConnectionTopics, addServerTopics } = require('../topics.js');
const { limitOptions, addOperations } = require('../operations.js');

const readyStates = Object.freeze({ INITIALIZING: -1, CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3, LISTENING: 4 });
const SERVER_EVENTS = ['accept', 'connect', 'request', 'error', 'lowError', 'close', 'backplane'];
const CONNECTION_EVENTS = ['message', 'close', 'error', 'drain', 'ping', 'pong'];
// sack's lowError numbers for the failures the native side names: 1 no TLS on a TLS port, 4 TLS handshake, 6 not
// HTTP, 7 unknown server name, 8 message too big, 9 malformed control frame.
const LOW_ERRORS = {
  'not-tls': 1, 'tls-handshake': 4, 'bad-request': 6, 'unknown-host': 7, 'message-too-big': 8, 'frame-too-big': 8,
  'fragmented-control': 9, 'control-too-long': 9, 'bad-close-payload': 9, 'bad-close-code': 9,
};
// Failures of sockets that never became WebSockets: sack's server 'error' event.
const BEFORE_UPGRADE = new Set(['dropped', 'timeout', 'bad-request', 'tls-handshake', 'unknown-host']);

function typeCheck(options, name, type) {
  const value = options[name];
  if (value === undefined) return;
  const ok =
    type === 'integer' ? Number.isInteger(value) :
    type === 'pem' ? typeof value === 'string' || Buffer.isBuffer(value) :
    type === 'array' ? Array.isArray(value) :
    typeof value === type;
  if (!ok) throw new TypeError(`Server option '${name}' must be ${type === 'pem' ? 'a string or Buffer' : `a(n) ${type}`}`);
}

/** Reads sack's argument forms: (url), (port), (options), (url|port, options), (options, onconnect). */
function parseServerArgs(args) {
  if (args.length === 0) throw new Error('Must specify options for server.');
  let i = 0;
  const options = {};
  if (typeof args[i] === 'string') options.url = args[i++];
  if (typeof args[i] === 'number') options.port = args[i++];
  if (args[i] !== null && typeof args[i] === 'object') Object.assign(options, args[i++]);
  const onconnect = typeof args[i] === 'function' ? args[i] : undefined;
  for (const [name, type] of [
    ['url', 'string'], ['address', 'string'], ['port', 'integer'], ['masking', 'boolean'],
    ['perMessageDeflateAllow', 'boolean'], ['maxPayload', 'number'],
    ['maxReceivedFrameSize', 'number'], ['maxReceivedMessageSize', 'number'], ['noDelay', 'boolean'],
    ['threads', 'integer'], ['handshakeTimeout', 'integer'], ['closeTimeout', 'integer'], ['maxBodySize', 'integer'],
    ['broadcastLimit', 'integer'], ['maxBackpressure', 'integer'], ['closeOnBackpressureLimit', 'boolean'],
    ['reusePort', 'boolean'],
    ['cert', 'pem'], ['key', 'pem'], ['ca', 'pem'], ['passphrase', 'string'], ['host', 'string'], ['hosts', 'array'],
  ]) typeCheck(options, name, type);
  let address = options.address ?? '::';
  let port = options.port ?? 8080;
  if (options.url !== undefined) {
    const url = new URL(options.url.includes('://') ? options.url : `ws://${options.url}`);
    if (url.hostname) address = url.hostname;
    if (url.port) port = Number(url.port);
  }
  if (port < 0 || port > 65535) throw new RangeError(`Server option 'port' must be 0 to 65535, got ${port}`);
  const maxPayload = options.maxPayload ?? options.maxReceivedMessageSize ?? options.maxReceivedFrameSize;
  if (maxPayload !== undefined && !(maxPayload > 0)) throw new RangeError("Server option 'maxPayload' must be positive");
  return {
    native: {
      address, port, maxPayload, noDelay: options.noDelay, masking: options.masking, threads: options.threads,
      handshakeTimeout: options.handshakeTimeout, closeTimeout: options.closeTimeout,
      deflate: deflateOptions(options.perMessageDeflate, options.perMessageDeflateAllow),
      maxBodyBytes: options.maxBodySize,
      tls: tlsOptions(options),
      broadcastLimit: options.broadcastLimit,
      maxBackpressure: options.maxBackpressure, closeOnBackpressureLimit: options.closeOnBackpressureLimit,
      backplane: backplaneOptions(options.backplane),
      ...limitOptions(options),
      // node:cluster workers share the port, as Node's own servers do in them.
      reusePort: options.reusePort ?? cluster.isWorker,
    },
    onconnect,
  };
}

/**
 * permessage-deflate: sack's `perMessageDeflate: true` (accept and compress replies) and `perMessageDeflateAllow:
 * true` (accept, reply uncompressed), or ws's object form for finer control.
 */
function deflateOptions(deflate, allow) {
  if (deflate === undefined || deflate === false) return allow ? { compress: false } : undefined;
  if (deflate === true) return { compress: true };
  if (deflate === null || typeof deflate !== 'object') {
    throw new TypeError("Server option 'perMessageDeflate' must be a boolean or an object");
  }
  const zlib = deflate.zlibDeflateOptions || {};
  const bits = (name) => {
    const v = deflate[name];
    if (v === undefined || v === true || v === false) return undefined;
    if (!Number.isInteger(v) || v < 8 || v > 15) throw new RangeError(`perMessageDeflate.${name} must be 8 to 15`);
    return v;
  };
  const level = zlib.level ?? deflate.level;
  if (level !== undefined && (!Number.isInteger(level) || level < -1 || level > 9)) {
    throw new RangeError('perMessageDeflate level must be -1 to 9');
  }
  const threshold = deflate.threshold ?? 1024;
  if (!Number.isInteger(threshold) || threshold < 0) throw new RangeError('perMessageDeflate.threshold must be a non-negative integer');
  return {
    compress: true,
    serverNoContextTakeover: Boolean(deflate.serverNoContextTakeover),
    clientNoContextTakeover: Boolean(deflate.clientNoContextTakeover),
    serverMaxWindowBits: bits('serverMaxWindowBits'),
    clientMaxWindowBits: bits('clientMaxWindowBits'),
    threshold,
    level: level === undefined || level === -1 ? undefined : level,
  };
}

const pem = (value) => (value === undefined ? undefined : Buffer.from(value));

function certOptions(where, o) {
  if (o.cert === undefined || o.key === undefined) throw new TypeError(`${where} needs both 'cert' and 'key'`);
  return { cert: pem(o.cert), key: pem(o.key), passphrase: o.passphrase, ca: pem(o.ca) };
}

/** sack's TLS options: a top-level cert/key (used for any server name no host matches) and `hosts` for SNI. */
function tlsOptions(options) {
  const hosts = options.hosts || [];
  if (options.cert === undefined && options.key === undefined && hosts.length === 0) return undefined;
  return {
    default: options.cert !== undefined || options.key !== undefined ? certOptions('Server option', options) : undefined,
    hosts: hosts.map((h, i) => {
      if (!h || (typeof h.host !== 'string' && !Array.isArray(h.host))) throw new TypeError(`Server option 'hosts[${i}].host' must be a string or an array of strings`);
      return { names: [].concat(h.host).map(String), cert: certOptions(`Server option 'hosts[${i}]'`, h) };
    }),
  };
}

/** Defines `onX` for each event: assigning registers the handler, and `obj.onX(fn)` does too (sack's README style). */
function defineEventProperties(proto, events) {
  for (const event of events) {
    Object.defineProperty(proto, `on${event}`, {
      configurable: true,
      get() { return (fn) => this.on(event, fn); },
      set(fn) { this.on(event, fn); },
    });
  }
}

/** `handlers` (none, one function or a list) with `fn` added: a lone handler is kept as is, a list made for a second. */
function withHandler(handlers, fn) {
  return handlers === undefined ? fn : typeof handlers === 'function' ? [handlers, fn] : [...handlers, fn];
}

function callHandlers(handlers, self, args) {
  if (typeof handlers === 'function') handlers.apply(self, args);
  else if (handlers) for (let i = 0; i < handlers.length; i++) handlers[i].apply(self, args);
}

function checkHandler(fn) {
  if (typeof fn !== 'function') throw new Error('Argument is not a function');
}

// A connection's `_life` and `_decision` values.
const OPEN = 0;
const CLOSED = 1;
const POSTED = 2;
/** `block()` was called: the upgrade waits for resume() or close(). */
const BLOCKED = Object.freeze({});

/** What a connection's opening request said: read from the native side when first asked for (see `request`). */
const REQUEST_FIELDS = ['url', 'headers', 'CGI', 'connection', 'protocols', 'extensions'];

/**
 * A server-side WebSocket connection (sack's `wssi`). It holds little until used: the request's fields are made
 * on first access and handler lists only for the events listened to, so an idle connection costs JavaScript a
 * few small objects.
 */
class Connection {
  constructor(server, nativeConn) {
    this._native = nativeConn;
    this._server = server;
    // 'message' and 'close', which nearly every application listens for, have fields of their own; the other
    // events' handlers go in an object made when one is first set, so a typical connection holds no object.
    this._messageHandlers = undefined;
    this._closeHandlers = undefined;
    this._handlers = undefined;
    this._request = undefined;
    /** During the upgrade: the accept handler's `accept()` or `reject()`, or BLOCKED. */
    this._decision = null;
    /** OPEN, then CLOSED once the close event was delivered, or POSTED once the connection went to another thread
     * (one field for both: every field costs every connection 8 bytes). */
    this._life = OPEN;
    this.protocol = undefined;
  }

  /** `url` (the path), `headers`, `CGI` (the query's parameters), `connection`, `protocols`, `extensions`. */
  _requestFields() {
    if (this._request) return this._request;
    const hs = this._native.handshake();
    const { path, CGI } = splitTarget(hs.url);
    const headers = headersObject(hs.headers);
    const connection = socketInfo(this._native, headers);
    Object.assign(connection, { secure: hs.secure, servername: hs.servername, tlsVersion: hs.tlsVersion, alpn: hs.alpn });
    this._request = { url: path, headers, CGI, connection, protocols: hs.protocols, extensions: hs.extensions };
    return this._request;
  }

  // CLOSED only once the close event has been delivered, so that state and events agree.
  get readyState() {
    if (this._life === CLOSED) return readyStates.CLOSED;
    const state = this._native.readyState;
    return state === readyStates.CLOSED ? readyStates.CLOSING : state;
  }
  get bufferedAmount() { return this._native.bufferedAmount; }
  set noDelay(on) { this._native.setNoDelay(Boolean(on)); }
  set aggregate(on) { this._native.setAggregate(Boolean(on)); }

  on(event, fn) {
    checkHandler(fn);
    if (!CONNECTION_EVENTS.includes(event)) throw new Error(`Unknown connection event '${event}'; expected one of ${CONNECTION_EVENTS.join(', ')}`);
    if (event === 'message') this._messageHandlers = withHandler(this._messageHandlers, fn);
    else if (event === 'close') this._closeHandlers = withHandler(this._closeHandlers, fn);
    else {
      const handlers = (this._handlers ??= {});
      handlers[event] = withHandler(handlers[event], fn);
    }
    if (event === 'ping' || event === 'pong') this._native.setControlEvents(true);
    return this;
  }

  _usable() {
    if (this._life === POSTED) throw new Error('Connection was posted to another thread; use the object that thread received.');
  }

  send(data) {
    this._usable();
    if (this._life === CLOSED) throw new Error('Connection has already been closed.');
    this._native.send(asPayload(data));
  }

  ping(data) {
    this._usable();
    this._native.ping(data);
  }

  close(code, reason) {
    this._usable();
    if (code !== undefined && (typeof code !== 'number' || !native.isValidCloseCode(code))) throw new RangeError(`invalid close code ${code}`);
    if (reason !== undefined && Buffer.byteLength(String(reason)) > native.MAX_CLOSE_REASON) {
      throw new RangeError(`The close reason must not be greater than ${native.MAX_CLOSE_REASON} bytes`);
    }
    this._native.close(code ?? 1000, reason === undefined ? undefined : String(reason));
  }

  /** Keeps a pending accept pending after the accept handler returns (finish it with resume() or close()). */
  block() { this._decision ??= BLOCKED; }

  /** Accepts a pending upgrade: a blocked one, or one posted to this thread. */
  resume() {
    this._usable();
    if (this._native.readyState === readyStates.CONNECTING) this._finishUpgrade(true);
  }

  /** Hands the connection to a thread waiting in `WebSocket.Thread.accept(name)`; see `Thread.post`. */
  post(name, options) {
    return Thread.post(name, this, options);
  }

  _finishUpgrade(accept, status) {
    if (this._life === POSTED) return;
    if (!accept) {
      this._native.reject(status);
      return;
    }
    // Without a choice, the first protocol the client offered (as ws does without handleProtocols): a client that
    // offers protocols refuses a 101 that names none.
    const protocol = this._decision?.protocol ?? this._native.firstProtocol ?? undefined;
    if (!this._native.accept(protocol)) return;
    this.protocol = protocol;
    if (this._server) this._server._opened(this);
  }

  /** After a post: this object gets no more events (the native side passes them to the new thread). */
  _detach() {
    this._life = POSTED;
    unregister(this._native.slot);
  }

  _emit(event, ...args) {
    callHandlers(this._handlers?.[event], this, args);
  }

  _onMessage(payload) {
    const handler = this._messageHandlers;
    // Called per message: no arguments array, as callHandlers would need.
    if (typeof handler === 'function') handler.call(this, payload);
    else if (handler) for (let i = 0; i < handler.length; i++) handler[i].call(this, payload);
  }

  _onClose(code, reason) {
    this._life = CLOSED;
    callHandlers(this._closeHandlers, this, [code, reason || null]);
  }

  _onDrain() { this._emit('drain'); }
  _onPing(data) { this._emit('ping', data); }
  _onPong(data) { this._emit('pong', data); }
}
for (const name of REQUEST_FIELDS) {
  Object.defineProperty(Connection.prototype, name, {
    configurable: true,
    enumerable: true,
    get() { return this._requestFields()[name]; },
    set(value) { this._requestFields()[name] = value; },
  });
}
for (const s of ['OPEN', 'CLOSED', 'CLOSING', 'CONNECTING', 'INITIALIZING']) {
  Object.defineProperty(Connection.prototype, s, { value: readyStates[s] });
}
defineEventProperties(Connection.prototype, CONNECTION_EVENTS);
addConnectionTopics(Connection.prototype);

/** `WebSocket.Server`: `new` is optional, as in sack. */
class ServerImpl {
  constructor(...args) {
    const { native: options, onconnect } = parseServerArgs(args);
    this._native = new native.NativeServer(options);
    this._handlers = {};
    this._pending = null;
    this._fallback = undefined;
    this._readyState = readyStates.LISTENING;
    if (onconnect) this.on('connect', onconnect);
    register(this._native.slot, this);
  }

  get readyState() { return this._readyState; }
  get port() { return this._native.address.port; }
  address() { return this._native.address; }

  on(event, fn) {
    checkHandler(fn);
    if (!SERVER_EVENTS.includes(event)) throw new Error(`Unknown server event '${event}'; expected one of ${SERVER_EVENTS.join(', ')}`);
    this._handlers[event] = fn; // one handler per event, as in sack
    if (event === 'request') this._native.setWantsRequests(true);
    if (event === 'error' || event === 'lowError') this._native.setWantsErrors(true);
    return this;
  }

  /** During `accept`: complete the upgrade, optionally choosing a sub-protocol. */
  accept(protocol) {
    if (!this._pending) throw new Error('Accept cannot be used outside of accept callback.');
    this._pending._decision = { accept: true, protocol: protocol === undefined ? undefined : String(protocol) };
  }

  /** During `accept`: refuse the upgrade (HTTP 403 unless a status is given). */
  reject(status) {
    if (!this._pending) throw new Error('Reject cannot be used outside of accept callback.');
    this._pending._decision = { accept: false, status };
  }

  /** During lowError 1 (a client that did not start TLS): go on with it in plain text on this port. */
  disableSSL() {
    if (!this._fallback) throw new Error('disableSSL() is only valid during a lowError event for a non-TLS client');
    this._fallback.decide(true);
  }

  /** During lowError 1: close the connection (what happens when neither is called). */
  rejectSSL() {
    if (!this._fallback) throw new Error('rejectSSL() is only valid during a lowError event for a non-TLS client');
    this._fallback.decide(false);
  }

  close() {
    if (this._readyState !== readyStates.LISTENING) return;
    this._readyState = readyStates.CLOSING;
    this._native.close();
  }

  _onUpgrade(nativeConn) {
    const ws = new Connection(this, nativeConn);
    register(nativeConn.slot, ws);
    const onaccept = this._handlers.accept;
    if (!onaccept) return ws._finishUpgrade(true);
    let result;
    this._pending = ws;
    try {
      result = onaccept.call(this, ws);
    } catch (err) {
      ws._finishUpgrade(false, 500);
      throw err;
    } finally {
      this._pending = null;
    }
    if (ws._life === POSTED || ws._decision === BLOCKED) return undefined;
    if (ws._decision) return ws._finishUpgrade(ws._decision.accept, ws._decision.status);
    if (result && typeof result.then === 'function') {
      result.then(() => ws._finishUpgrade(true), () => ws._finishUpgrade(false));
      return undefined;
    }
    return ws._finishUpgrade(true);
  }

  _opened(ws) {
    const onconnect = this._handlers.connect;
    if (onconnect) onconnect.call(ws, ws);
  }

  /** A failure the native side names: sack reports some as `lowError` numbers, and those before the upgrade as `error`. */
  _onFailure([name, ends, detail, fallback]) {
    const code = LOW_ERRORS[name];
    const handler = this._handlers.lowError;
    this._fallback = fallback;
    try {
      if (handler && code !== undefined) handler.call(this, code, socketInfo(ends, {}), detail);
    } finally {
      this._fallback = undefined;
      if (fallback) fallback.decide(false);
    }
    if (BEFORE_UPGRADE.has(name) && this._handlers.error) this._handlers.error.call(this, socketInfo(ends, {}));
  }

  _onRequest(exchange) {
    handleRequest(exchange, this._handlers.request, this);
  }

  _onServerClose() {
    this._readyState = readyStates.CLOSED;
    if (this._handlers.close) this._handlers.close.call(this);
  }
}
defineEventProperties(ServerImpl.prototype, SERVER_EVENTS);
// broadcast(data), publish(topic, data): the frame is built once natively and shared by every write queue; a
// connection with more than `broadcastLimit` bytes queued (default 1 MiB) is skipped. Both return { sent, skipped }.
// stats(), subscribers(topic), topicList(), drain(): see lib/operations.js.
addOperations(ServerImpl.prototype);
addServerTopics(ServerImpl.prototype, function report(state, err) {
  if (this._handlers.backplane) this._handlers.backplane.call(this, state, err);
});

function Server(...args) {
  return new ServerImpl(...args);
}
Server.prototype = ServerImpl.prototype;

/**
 * Handing accepted connections between worker_threads (sack's `WebSocket.Thread`). The socket stays in the
 * native runtime; only where its events go moves, with none lost or reordered.
 */
const Thread = {
  /** Moves `ws` to a thread waiting in `accept(name)`; true if one took it. `{ queue: true }` waits for one. */
  post(name, ws, options) {
    if (typeof name !== 'string') throw new TypeError('Thread.post: the name must be a string');
    if (!(ws instanceof Connection)) throw new TypeError('Thread.post: the socket must be a ferrows server connection');
    if (ws._life === POSTED) throw new Error('Thread.post: the connection was already posted to another thread');
    if (ws._life === CLOSED) throw new Error('Thread.post: the connection is closed');
    const moved = ws._native.post(name, Boolean(options && options.queue));
    if (moved) ws._detach();
    return moved;
  },

  /** Receives connections posted to `name` as cb(name, ws): one, or every one with `{ persistent: true }`. */
  accept(name, cb, options) {
    if (typeof name !== 'string') throw new TypeError('Thread.accept: the name must be a string');
    if (typeof cb !== 'function') throw new TypeError('Thread.accept: the callback must be a function');
    const persistent = Boolean(options && options.persistent);
    const slot = native.acceptPosts(name, persistent);
    register(slot, {
      _onPosted(nativeConn) {
        if (!persistent) unregister(slot);
        const ws = new Connection(null, nativeConn);
        register(nativeConn.slot, ws);
        cb.call(ws, name, ws);
      },
    });
  },

  /** Stops this thread's registrations for `name`. */
  cancel(name) {
    for (const slot of native.cancelPosts(String(name))) unregister(slot);
  },
};

module.exports = { WebSocket: { Server, readyStates, Connection, Thread } };
