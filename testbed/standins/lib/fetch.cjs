'use strict';
/*
 * Fetching: http (direct or through http_proxy, honouring no_proxy and
 * IGNORE_PROXY), https (direct) and file:// URLs (under PKGSRC_STANDIN_ROOT),
 * with conditional GETs and the network error texts of libfetch.
 */

const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const { toolName } = require('./output.cjs');
const { R, errText } = require('./files.cjs');
const { PKGTOOLS_VERSION, currentConfig } = require('./config.cjs');

class FetchError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

const NET_ERRORS = {
  ECONNREFUSED: 'Connection refused',
  ENOTFOUND: 'No address record',
  EAI_AGAIN: 'Temporary failure in name resolution',
  ETIMEDOUT: 'Operation timed out',
  ECONNRESET: 'Connection reset by peer',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
};

function bypassProxy(hostname, port) {
  const list = process.env.no_proxy ?? process.env.NO_PROXY ?? '';
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  for (let item of list.split(/[\s,]+/)) {
    item = item.trim().toLowerCase();
    if (!item) continue;
    if (item === '*') return true;
    let itemPort = null;
    const m = /^(.*?):(\d+)$/.exec(item);
    if (m && !item.includes(']') && m[1].indexOf(':') < 0) {
      item = m[1];
      itemPort = m[2];
    }
    item = item.replace(/^\[|\]$/g, '').replace(/^\*/, '');
    if (itemPort && itemPort !== String(port)) continue;
    if (host === item.replace(/^\./, '') || (item.startsWith('.') ? host.endsWith(item) : host.endsWith(`.${item}`))) {
      return true;
    }
  }
  return false;
}

function proxyFor(url) {
  if (url.protocol !== 'http:') return null;
  const config = currentConfig();
  if (config && config.IGNORE_PROXY) return null;
  const p = process.env.http_proxy || process.env.HTTP_PROXY;
  if (!p) return null;
  if (bypassProxy(url.hostname, url.port || '80')) return null;
  try {
    return new URL(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(p) ? p : `http://${p}`);
  } catch {
    return null;
  }
}

function httpOnce(url, opts) {
  return new Promise((resolve, reject) => {
    const proxy = proxyFor(url);
    const mod = url.protocol === 'https:' ? https : http;
    const headers = { 'User-Agent': `${toolName()}/${PKGTOOLS_VERSION} (pkgsrc stand-in)`, Connection: 'close' };
    if (opts.ifModifiedSince) headers['If-Modified-Since'] = new Date(opts.ifModifiedSince).toUTCString();
    const unbracket = (h) => h.replace(/^\[|\]$/g, '');
    let reqOpts;
    if (proxy) {
      // Plain HTTP proxying: the proxy gets the absolute URI.
      headers.Host = url.host;
      if (proxy.username) {
        const cred = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
        headers['Proxy-Authorization'] = `Basic ${Buffer.from(cred).toString('base64')}`;
      }
      reqOpts = {
        host: unbracket(proxy.hostname),
        port: proxy.port || 3128,
        path: `${url.protocol}//${url.host}${url.pathname}${url.search}`,
      };
    } else {
      reqOpts = { host: unbracket(url.hostname), port: url.port || (url.protocol === 'https:' ? 443 : 80), path: url.pathname + url.search };
    }
    const req = mod.request({ ...reqOpts, method: opts.method || 'GET', headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (e) => reject(new FetchError(e.message === 'aborted' ? 'Truncated response' : NET_ERRORS[e.code] || e.message)));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const cl = res.headers['content-length'];
        if (cl !== undefined && opts.method !== 'HEAD' && res.statusCode === 200 && body.length < Number(cl)) {
          reject(new FetchError('Truncated response'));
          return;
        }
        const lm = Date.parse(res.headers['last-modified'] || '');
        resolve({
          status: res.statusCode,
          statusText: res.statusMessage || `HTTP ${res.statusCode}`,
          headers: res.headers,
          body,
          lastModified: Number.isNaN(lm) ? null : lm,
        });
      });
    });
    req.setTimeout(opts.timeoutMs || 120000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => reject(new FetchError(NET_ERRORS[e.code] || e.message)));
    req.end();
  });
}

/** GET a URL; 3xx are followed, other statuses are returned to the caller. */
async function fetchUrl(urlStr, opts = {}) {
  let url;
  try {
    url = new URL(urlStr);
  } catch {
    throw new FetchError(`Invalid URL: ${urlStr}`);
  }
  for (let hop = 0; hop < 6; hop++) {
    if (url.protocol === 'file:') {
      const p = R(decodeURIComponent(url.pathname));
      let st;
      try {
        st = fs.statSync(p);
      } catch (e) {
        if (e.code === 'ENOENT') return { status: 404, statusText: 'File Not Found', body: Buffer.alloc(0), lastModified: null };
        throw new FetchError(errText(e));
      }
      const mtime = Math.floor(st.mtimeMs / 1000) * 1000;
      if (opts.ifModifiedSince && mtime <= opts.ifModifiedSince) return { status: 304, statusText: 'Not Modified', body: Buffer.alloc(0), lastModified: mtime };
      if (st.isDirectory()) {
        const html = fs.readdirSync(p).map((n) => `<a href="${encodeURIComponent(n)}">${n}</a>`).join('\n');
        return { status: 200, statusText: 'OK', body: Buffer.from(html), lastModified: mtime };
      }
      return { status: 200, statusText: 'OK', body: fs.readFileSync(p), lastModified: mtime };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FetchError(`URL scheme not supported: ${url.protocol}`);
    const res = await httpOnce(url, opts);
    if ([301, 302, 303, 307, 308].includes(res.status) && res.headers.location) {
      url = new URL(res.headers.location, url);
      continue;
    }
    return res;
  }
  throw new FetchError('Too many redirects');
}

async function fetchOk(urlStr, opts = {}) {
  const res = await fetchUrl(urlStr, opts);
  if (res.status === 304 && opts.ifModifiedSince) return res;
  if (res.status < 200 || res.status > 299) throw new FetchError(res.statusText, res.status);
  return res;
}

function isUrl(s) {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(s);
}

module.exports = { FetchError, fetchUrl, fetchOk, isUrl };
