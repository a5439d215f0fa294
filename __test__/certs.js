'use strict';
// Self-signed certificates made for the tests with the openssl command line (no keys are committed).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrows-certs-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

function openssl(...args) {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A P-256 key and a self-signed certificate for `names` (the first is the CN; IPv4 addresses become IP names). */
function selfSigned(...names) {
  return certificate(names, []);
}

/** The same, marked as no CA: what rustls, as a client, accepts as a self-signed server certificate. */
function selfSignedEndEntity(...names) {
  return certificate(names, ['-addext', 'basicConstraints=critical,CA:FALSE']);
}

function certificate(names, extra) {
  const base = path.join(dir, `${names[0].replace(/[^a-z0-9.]/gi, '_')}-${Math.random().toString(36).slice(2)}`);
  const altNames = names.map((n) => (/^\d+(\.\d+){3}$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-keyout', `${base}.key`, '-out', `${base}.crt`, '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${altNames}`, ...extra);
  return { cert: fs.readFileSync(`${base}.crt`, 'utf8'), key: fs.readFileSync(`${base}.key`, 'utf8'), base };
}

/** The key of `pair` as encrypted PKCS#8 (PBES2, AES-256) under `passphrase`. */
function encryptedKey(pair, passphrase) {
  openssl('pkcs8', '-topk8', '-in', `${pair.base}.key`, '-out', `${pair.base}.enc.key`, '-passout', `pass:${passphrase}`);
  return fs.readFileSync(`${pair.base}.enc.key`, 'utf8');
}

module.exports = { selfSigned, selfSignedEndEntity, encryptedKey };
