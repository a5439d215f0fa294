'use strict';
// Topics and the Redis backplane, the same in every face: option checks, and the methods each face's server and
// connection classes get (their native object is `this._native`). Membership and fan-out are native.

const { native } = require('./pump.js');
const { asPayload } = require('./payload.js');

const { MAX_TOPIC_BYTES } = native;

function checkTopic(topic) {
  if (typeof topic !== 'string' || topic.length === 0 || Buffer.byteLength(topic) > MAX_TOPIC_BYTES) {
    throw new TypeError(`A topic must be a non-empty string of at most ${MAX_TOPIC_BYTES} bytes`);
  }
  return topic;
}

function positiveInteger(value, name) {
  if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
    throw new TypeError(`Server option 'backplane.${name}' must be a positive integer`);
  }
  return value;
}

/** The `backplane` server option: { redis: 'redis://host:port/db', name, maxLen, queueLimit, required }. */
function backplaneOptions(option) {
  if (option === undefined || option === null) return undefined;
  if (typeof option !== 'object') throw new TypeError("Server option 'backplane' must be an object");
  const redis = option.redis ?? 'redis://127.0.0.1:6379';
  if (typeof redis !== 'string') throw new TypeError("Server option 'backplane.redis' must be a redis:// URL string");
  const name = option.name ?? 'ferrows';
  if (typeof name !== 'string' || name === '') throw new TypeError("Server option 'backplane.name' must be a non-empty string");
  return {
    redis,
    name,
    maxLen: positiveInteger(option.maxLen, 'maxLen'),
    queueLimit: positiveInteger(option.queueLimit, 'queueLimit'),
    required: Boolean(option.required),
  };
}

const NOTHING_SENT = Object.freeze({ sent: 0, skipped: 0 });

const ownNative = (self) => self._native;

/**
 * subscribe(topic) and unsubscribe(topic) (true if membership changed) and `topics` for a face's connection
 * class; `nativeOf(conn)` finds the native connection (null before it is attached).
 */
function addConnectionTopics(proto, nativeOf = ownNative) {
  Object.defineProperties(proto, {
    subscribe: { configurable: true, writable: true, value(topic) { checkTopic(topic); return nativeOf(this)?.subscribe(topic) ?? false; } },
    unsubscribe: { configurable: true, writable: true, value(topic) { checkTopic(topic); return nativeOf(this)?.unsubscribe(topic) ?? false; } },
    topics: { configurable: true, get() { return nativeOf(this)?.topics ?? []; } },
  });
}

/**
 * publish(topic, data) and broadcast(data) for a face's server class: every subscribed (or every) connection,
 * in this process and, with a backplane, in every process on it. Both return what happened here: { sent, skipped }.
 * `report(state, err)` is how the face tells its application about the backplane (none: the face's native
 * server reports to another object).
 */
function addServerTopics(proto, report, { broadcast = true, nativeOf = ownNative } = {}) {
  proto.publish = function publish(topic, data) {
    checkTopic(topic);
    return nativeOf(this)?.publish(topic, asPayload(data)) ?? NOTHING_SENT;
  };
  if (broadcast) {
    proto.broadcast = function broadcast(data) {
      return nativeOf(this)?.broadcast(asPayload(data)) ?? NOTHING_SENT;
    };
  }
  if (report) proto._onBackplane = function onBackplane([state, message]) {
    report.call(this, state, message === undefined ? undefined : new Error(message));
  };
}

/** The report of EventEmitter faces: a 'backplane' event. */
function emitBackplane(state, err) {
  this.emit('backplane', state, err);
}

module.exports = { checkTopic, backplaneOptions, addConnectionTopics, addServerTopics, emitBackplane };
