import { request } from 'node:https';
import type { Agent } from 'node:https';

/**
 * A `fetch` over node:https for google-auth-library's HTTP client (gaxios). Why not gaxios's
 * default: it loads node-fetch through a dynamic ESM import, which fails inside a VM such as
 * jest's; and Node's global fetch ignores an https.Agent, so a private CA could not be trusted.
 * This one sends through `agent` (keep-alive, extra CA) and honours the abort signal that
 * carries the request timeout.
 */
export function httpsFetch(agent: Agent): typeof fetch {
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const body = init.body === undefined || init.body === null ? undefined : bodyBytes(init.body);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    // As fetch does: a form body carries its media type unless the caller set one.
    if (init.body instanceof URLSearchParams && headers['content-type'] === undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded;charset=UTF-8';
    }
    return new Promise<Response>((resolve, reject) => {
      const req = request(url, { method: init.method ?? 'GET', headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const status = res.statusCode ?? 502;
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined)
              responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
          }
          const hasBody = status !== 204 && status !== 304;
          resolve(
            new Response(hasBody ? Buffer.concat(chunks) : null, {
              status,
              headers: responseHeaders,
            }),
          );
        });
      });
      const signal = init.signal;
      if (signal) {
        const abort = (): void => {
          req.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
        };
        if (signal.aborted) abort();
        else signal.addEventListener('abort', abort, { once: true });
        req.on('close', () => signal.removeEventListener('abort', abort));
      }
      req.on('error', reject);
      req.end(body);
    });
  };
}

function bodyBytes(body: NonNullable<RequestInit['body']>): Buffer {
  if (typeof body === 'string' || body instanceof URLSearchParams)
    return Buffer.from(body.toString());
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError('httpsFetch sends string, form or byte bodies only');
}
