'use strict';
// Close codes an application may send (RFC 6455 §7.4): 1004-1006 and 1015 are reserved for local use.
const isValidStatusCode = (code) =>
  (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);

module.exports = { isValidStatusCode };
