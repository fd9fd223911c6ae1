// http and https: one request; the check passes when the status is in the expected set
// (default 200–299) and the body, when a body condition is given, satisfies it.
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';

import { parseStatusRanges, type HttpCheck } from '../config';
import { describeFailure, type CheckRunner } from './types';

/** Bodies are read up to this size; a body condition sees at most this much. */
const MAX_BODY_BYTES = 1 << 20;
const DEFAULT_STATUS: Array<[number, number]> = [[200, 299]];

export const runHttpCheck: CheckRunner<HttpCheck> = (spec, target, signal) => new Promise((resolve) => {
  const secure = spec.type === 'https';
  const statuses = spec.expectStatus ? parseStatusRanges(spec.expectStatus, 'expectStatus') : DEFAULT_STATUS;
  const wantsBody = spec.body !== undefined || spec.bodyRegex !== undefined || spec.bodyMd5 !== undefined;
  const defaultPort = secure ? 443 : 80;
  const hostAddress = isIP(target.address) === 6 ? `[${target.address}]` : target.address;
  const host = spec.host ?? (target.port === defaultPort ? hostAddress : `${hostAddress}:${target.port}`);
  const servername = spec.sni ?? (spec.host && isIP(spec.host.replace(/:\d+$/, '')) === 0 ? spec.host.replace(/:\d+$/, '') : undefined);
  const options: https.RequestOptions = {
    host: target.address,
    port: target.port,
    method: spec.method ?? 'GET',
    path: spec.path ?? '/',
    headers: { Host: host, 'User-Agent': 'ipvs-netlink-director', Connection: 'close' },
    agent: false,
    signal,
    ...(target.bindAddress ? { localAddress: target.bindAddress } : {}),
    ...(secure ? { rejectUnauthorized: spec.tlsVerify ?? false, ...(servername ? { servername } : {}) } : {}),
  };
  let settled = false;
  const finish = (ok: boolean, message: string): void => {
    if (settled) return;
    settled = true;
    request.destroy();
    resolve({ ok, message });
  };
  const request = (secure ? https : http).request(options, (response) => {
    const status = response.statusCode ?? 0;
    if (!statuses.some(([low, high]) => status >= low && status <= high)) {
      finish(false, `HTTP ${status}`);
      return;
    }
    if (!wantsBody) {
      finish(true, `HTTP ${status}`);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const md5 = spec.bodyMd5 ? createHash('md5') : undefined;
    response.on('data', (chunk: Buffer) => {
      md5?.update(chunk);
      if (size < MAX_BODY_BYTES) chunks.push(chunk);
      size += chunk.length;
    });
    response.once('error', (error) => finish(false, describeFailure('response', error)));
    response.once('end', () => {
      const body = Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString('utf8');
      if (spec.body !== undefined && !body.includes(spec.body)) return finish(false, `HTTP ${status}, body lacks ${JSON.stringify(spec.body)}`);
      if (spec.bodyRegex !== undefined && !new RegExp(spec.bodyRegex).test(body)) return finish(false, `HTTP ${status}, body does not match /${spec.bodyRegex}/`);
      if (md5) {
        const digest = md5.digest('hex');
        if (digest !== spec.bodyMd5!.toLowerCase()) return finish(false, `HTTP ${status}, body MD5 ${digest}`);
      }
      return finish(true, `HTTP ${status}`);
    });
  });
  request.once('error', (error) => {
    finish(false, signal.aborted ? 'request timed out' : describeFailure('request', error));
  });
  request.end();
});
