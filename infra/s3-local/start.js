// Starts s3rver (pinned by package.json / package-lock.json beside this file) for the local stack:
//   node start.js <address> <port> <directory> <bucket> [<allowed origin>,...]
// It creates the bucket (with its CORS configuration) at start-up, accepts the local stack's dummy
// credentials (access key `local`, secret `local`) as well as s3rver's own, and prints
// "listening <port>" once it serves.
//
// What s3rver checks itself (probed against moto[server] 5.2.5, which checks less): the expiry of a
// presigned URL (`X-Amz-Expires`: 403 AccessDenied once expired) and that the access key is known.
// It does not verify SigV4 signatures, and moto verifies neither signatures nor expiry. So this
// launcher verifies every request's SigV4 signature (presigned query or Authorization header) before
// s3rver sees it, as S3 does: a tampered signature, or a body sent with another Content-Length or
// Content-Type than the signed ones, is refused with 403 SignatureDoesNotMatch, and an anonymous
// request (the bucket is private) with 403 AccessDenied. Only CORS preflights go unsigned.
'use strict';

const crypto = require('crypto');
const S3rver = require('s3rver');
const AWSAccount = require('s3rver/lib/models/account');

const [address, port, directory, bucket, origins] = process.argv.slice(2);
AWSAccount.DUMMY_ACCOUNT.createKeyPair('local', 'local');
// Browser uploads (PUT) and downloads (GET) from the allowed origins, as template.yaml's bucket allows.
const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const allowed = (origins || '').split(',').map((o) => o.trim()).filter(Boolean);
const configs = allowed.length
  ? [
      '<CORSConfiguration><CORSRule>' +
        allowed.map((o) => `<AllowedOrigin>${escape(o)}</AllowedOrigin>`).join('') +
        '<AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>' +
        '<AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds>' +
        '</CORSRule></CORSConfiguration>',
    ]
  : [];
const server = new S3rver({
  address,
  port: Number(port),
  directory,
  silent: true,
  vhostBuckets: false,
  configureBuckets: [{ name: bucket, configs }],
});
const secrets = new Map([
  ['local', 'local'],
  ['S3RVER', 'S3RVER'],
]);
// The local stack gives each function an access key of its own (`ASIALOCAL...`, all with the secret
// `local`): the key names the caller's role for the stack's IAM checks. s3rver must know a key before it
// serves any request carrying it, a browser's CORS preflight of a presigned URL included.
const localKey = /ASIALOCAL[0-9A-Z]+/;
function acceptLocalKey(req) {
  const found = localKey.exec(req.url) || localKey.exec(req.headers.authorization || '');
  if (found && !secrets.has(found[0])) {
    secrets.set(found[0], 'local');
    AWSAccount.DUMMY_ACCOUNT.createKeyPair(found[0], 'local');
  }
}
const inner = server.callback.bind(server);
server.callback = () => {
  const handle = inner();
  return (req, res) => {
    acceptLocalKey(req);
    const problem = req.method === 'OPTIONS' ? null : verify(req);
    const refuse = (status, { code, message }) => {
      res.writeHead(status, { 'Content-Type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
          `<Message>${escape(message)}</Message></Error>`,
      );
    };
    if (problem) return refuse(403, problem);
    if (req.method !== 'PUT' || req.headers['if-none-match'] !== '*') return handle(req, res);
    // S3's conditional write: `If-None-Match: *` creates the object only if it does not exist (412
    // PreconditionFailed otherwise). s3rver ignores the header, so it is checked here; two uploads
    // racing each other may both pass this check, where S3 lets exactly one through.
    const [, target, ...rest] = req.url.split('?')[0].split('/');
    const key = rest.map(decodeURIComponent).join('/');
    server.store.existsObject(decodeURIComponent(target), key).then(
      (exists) =>
        exists
          ? refuse(412, { code: 'PreconditionFailed', message: 'At least one of the pre-conditions you specified did not hold' })
          : handle(req, res),
      (err) => refuse(500, { code: 'InternalError', message: String(err) }),
    );
  };
};

// RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~
const strict = (text) =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
const sha256 = (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex');
const hmac = (key, text) => crypto.createHmac('sha256', key).update(text, 'utf8').digest();

/** Why the request's SigV4 signature does not hold, or null when it does. */
function verify(req) {
  const [rawPath, rawQuery = ''] = req.url.split(/\?(.*)/s);
  const params = rawQuery
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const at = pair.indexOf('=');
      const [k, v] = at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
      return [decodeURIComponent(k), decodeURIComponent(v)];
    });
  const query = new Map(params);
  let credential, signedHeaders, signature, amzDate, payloadHash;
  const authorization = req.headers['authorization'];
  if (query.has('X-Amz-Signature')) {
    credential = query.get('X-Amz-Credential');
    signedHeaders = query.get('X-Amz-SignedHeaders');
    signature = query.get('X-Amz-Signature');
    amzDate = query.get('X-Amz-Date');
    payloadHash = query.get('X-Amz-Content-Sha256') || 'UNSIGNED-PAYLOAD';
  } else if (authorization && authorization.startsWith('AWS4-HMAC-SHA256 ')) {
    const fields = Object.fromEntries(
      authorization
        .slice('AWS4-HMAC-SHA256 '.length)
        .split(',')
        .map((f) => f.trim().split(/=(.*)/s).slice(0, 2)),
    );
    ({ Credential: credential, SignedHeaders: signedHeaders, Signature: signature } = fields);
    amzDate = req.headers['x-amz-date'];
    payloadHash = req.headers['x-amz-content-sha256'] || 'UNSIGNED-PAYLOAD';
  } else {
    return { code: 'AccessDenied', message: 'Access Denied (the bucket is private: sign the request)' };
  }
  if (!credential || !signedHeaders || !signature || !amzDate) {
    return { code: 'AuthorizationQueryParametersError', message: 'Incomplete SigV4 authorization' };
  }
  const [accessKey, ...scopeParts] = credential.split('/');
  const secret = secrets.get(accessKey);
  if (!secret) {
    return { code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist in our records.' };
  }
  const canonicalQuery = params
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [strict(k), strict(v)])
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const names = signedHeaders.split(';');
  const canonicalHeaders = names
    .map((name) => {
      const value = req.headers[name];
      const text = Array.isArray(value) ? value.join(',') : value === undefined ? '' : String(value);
      return `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const canonicalRequest = [req.method, rawPath, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = scopeParts.join('/');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  let key = 'AWS4' + secret;
  for (const part of scopeParts) key = hmac(key, part);
  const expected = crypto.createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  const ok =
    expected.length === signature.length && crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(signature));
  return ok
    ? null
    : {
        code: 'SignatureDoesNotMatch',
        message: 'The request signature we calculated does not match the signature you provided.',
      };
}

server.run((err, { port: bound } = {}) => {
  if (err) {
    console.error(`s3rver did not start: ${err.message || err}`);
    process.exit(1);
  }
  console.log(`listening ${bound}`);
});
