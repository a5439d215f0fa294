'use strict';
// Running a server in production, the same on every face: the limit options (checked natively, before any
// JavaScript runs), stats(), presence (subscribers and topicList here, subscriberCount across a backplane) and
// drain() for rolling deploys.

const LIMIT_OPTIONS = {
  maxConnections: 'a positive integer',
  maxConnectionsPerIp: 'a positive integer',
  maxMessagesPerSecond: 'a positive integer',
  maxBytesPerSecond: 'a positive integer',
  idleTimeout: 'a positive number of seconds',
  maxLifetime: 'a positive number of minutes',
};

function positive(options, name) {
  const value = options[name];
  if (value === undefined || value === null) return undefined;
  const integer = LIMIT_OPTIONS[name] === 'a positive integer';
  if (typeof value !== 'number' || !(value > 0) || (integer && !Number.isInteger(value))) {
    throw new TypeError(`Server option '${name}' must be ${LIMIT_OPTIONS[name]}`);
  }
  return value;
}

/**
 * The native form of the limit options: maxConnections, maxConnectionsPerIp (over them an upgrade gets 503 with
 * Retry-After), maxMessagesPerSecond, maxBytesPerSecond with rateLimit 'close' (1008, the default) or 'pause',
 * idleTimeout (seconds without receiving: 1001; sendPingsAutomatically, on by default, pings first) and
 * maxLifetime (minutes: 1001).
 */
function limitOptions(options = {}) {
  const { rateLimit = 'close', sendPingsAutomatically } = options;
  if (rateLimit !== 'close' && rateLimit !== 'pause') throw new TypeError("Server option 'rateLimit' must be 'close' or 'pause'");
  if (sendPingsAutomatically !== undefined && typeof sendPingsAutomatically !== 'boolean') {
    throw new TypeError("Server option 'sendPingsAutomatically' must be a boolean");
  }
  const idle = positive(options, 'idleTimeout');
  const lifetime = positive(options, 'maxLifetime');
  return {
    maxConnections: positive(options, 'maxConnections'),
    maxConnectionsPerIp: positive(options, 'maxConnectionsPerIp'),
    maxMessagesPerSecond: positive(options, 'maxMessagesPerSecond'),
    maxBytesPerSecond: positive(options, 'maxBytesPerSecond'),
    pauseOverRate: rateLimit === 'pause',
    idleTimeout: idle === undefined ? undefined : Math.round(idle * 1000),
    pingWhenIdle: sendPingsAutomatically,
    maxLifetime: lifetime === undefined ? undefined : Math.round(lifetime * 60000),
  };
}

const ownNative = (self) => self._native;

/**
 * stats(), subscribers(topic), topicList() and drain(options) for a face's server class; `nativeOf(server)` finds
 * its native server. drain({ code = 1001, reason = 'server restarting', within = 10000 }) stops accepting at
 * once, closes the open connections spread over `within` ms and resolves when all are gone.
 */
function addOperations(proto, nativeOf = ownNative) {
  proto.stats = function stats() {
    return nativeOf(this).stats();
  };
  proto.subscribers = function subscribers(topic) {
    return nativeOf(this).subscribers(topic);
  };
  proto.subscriberCount = function subscriberCount(topic) {
    return nativeOf(this).subscriberCount(topic);
  };
  proto.topicList = function topicList() {
    return nativeOf(this).topicList().map(({ topic }) => topic);
  };
  proto.drain = function drain({ code = 1001, reason = 'server restarting', within = 10000 } = {}) {
    if (this._draining) return this._draining.promise;
    if (typeof within !== 'number' || !(within >= 0)) throw new TypeError("drain(): 'within' must be a number of milliseconds");
    const draining = {};
    draining.promise = new Promise((resolve) => { draining.resolve = resolve; });
    this._draining = draining;
    this._beforeDrain?.();
    const native = nativeOf(this);
    if (!native || !native.drain(code, String(reason), within)) draining.resolve();
    return draining.promise;
  };
  proto._onDrained = function onDrained() {
    if (this._draining) this._draining.resolve();
  };
}

module.exports = { limitOptions, addOperations };
