/**
 * The Authorization parser IMGAPI runs (node-http-signature v0.10.0,
 * lib/parser.js, pinned by sdc-imgapi), restated in TypeScript: today's
 * http-signature 1.x is more lenient, so it cannot stand in. What matters:
 * the scheme is followed by exactly one space, param names are letters
 * only, values are quoted, params are separated by a bare comma (a space
 * after a comma is "bad param format"), keyId/algorithm/signature are
 * required, the signed headers default to `x-date` or `date`, and the
 * date must be within the clock skew.
 */
import type { IncomingMessage } from 'node:http';

export class SignatureParseError extends Error {}

export interface ParsedSignature {
  scheme: string;
  params: { keyId: string; algorithm: string; signature: string; headers: string[] } & Record<string, unknown>;
  signingString: string;
  /** Upper case, as the 0.10 parser's getter returns it (IMGAPI compares it with VALID_ALGS). */
  algorithm: string;
  keyId: string;
}

const ALGORITHMS = new Set(['rsa-sha1', 'rsa-sha256', 'rsa-sha512', 'dsa-sha1', 'hmac-sha1', 'hmac-sha256', 'hmac-sha512']);

export function parseRequest010(req: IncomingMessage, clockSkewS = 300): ParsedSignature {
  const authz = req.headers.authorization;
  if (!authz) throw new SignatureParseError('no authorization header present in the request');
  let scheme = '';
  let inParams = false;
  let sub: 'name' | 'quote' | 'value' | 'comma' = 'name';
  let name = '';
  let value = '';
  const params: Record<string, string> = {};
  for (const c of authz) {
    if (!inParams) {
      if (c !== ' ') scheme += c;
      else inParams = true;
      continue;
    }
    switch (sub) {
      case 'name':
        if (/[A-Za-z]/.test(c)) name += c;
        else if (c === '=' && name.length) sub = 'quote';
        else throw new SignatureParseError('bad param format');
        break;
      case 'quote':
        if (c !== '"') throw new SignatureParseError('bad param format');
        value = '';
        sub = 'value';
        break;
      case 'value':
        if (c === '"') {
          params[name] = value;
          sub = 'comma';
        } else value += c;
        break;
      case 'comma':
        if (c !== ',') throw new SignatureParseError('bad param format');
        name = '';
        sub = 'name';
        break;
    }
  }
  const xdate = req.headers['x-date'];
  const headers = params.headers ? params.headers.split(' ') : [xdate ? 'x-date' : 'date'];
  if (scheme !== 'Signature') throw new SignatureParseError('scheme was not "Signature"');
  if (!params.keyId) throw new SignatureParseError('keyId was not specified');
  if (!params.algorithm) throw new SignatureParseError('algorithm was not specified');
  if (!params.signature) throw new SignatureParseError('signature was not specified');
  const algorithm = params.algorithm.toLowerCase();
  if (!ALGORITHMS.has(algorithm)) throw new SignatureParseError(`${algorithm} is not supported`);
  let signingString = '';
  headers.forEach((h0, i) => {
    const h = h0.toLowerCase();
    headers[i] = h;
    if (h === 'request-line') signingString += `${req.method} ${req.url} HTTP/${req.httpVersion}`;
    else {
      const v = req.headers[h];
      if (!v) throw new SignatureParseError(`${h} was not in the request`);
      signingString += `${h}: ${String(v)}`;
    }
    if (i + 1 < headers.length) signingString += '\n';
  });
  const dateHeader = (xdate ?? req.headers.date) as string | undefined;
  if (dateHeader) {
    const skew = Math.abs(Date.now() - new Date(dateHeader).getTime());
    if (skew > clockSkewS * 1000) throw new SignatureParseError(`clock skew of ${skew / 1000}s was greater than ${clockSkewS}s`);
  }
  const required = xdate ? 'x-date' : 'date';
  if (!headers.includes(required)) throw new SignatureParseError(`${required} was not a signed header`);
  return {
    scheme,
    params: { ...params, keyId: params.keyId, algorithm, signature: params.signature, headers },
    signingString,
    algorithm: algorithm.toUpperCase(),
    keyId: params.keyId,
  };
}
