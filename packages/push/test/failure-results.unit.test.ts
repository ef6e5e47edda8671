/**
 * How each provider's failures map to what the outbox does next (retry, with the provider's
 * Retry-After when it gave one; gone: the target is removed; failed: dropped). The providers'
 * integration tests reach these through real HTTP/2 and HTTPS receivers; here every branch.
 */
import type { ResponseFailure } from '@parse/node-apn';
import { apnsFailureResult } from '../src/apns-provider';
import { fcmFailureResult } from '../src/fcm-provider';
import { webPushFailureResult } from '../src/webpush-provider';

const NOW = Date.UTC(2026, 11, 7, 12, 0, 0);
const FCM_ERROR = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
const BAD_REQUEST = 'type.googleapis.com/google.rpc.BadRequest';

describe('APNs failures', () => {
  const apns = (status: number | undefined, reason?: string): ResponseFailure =>
    ({
      device: 'token',
      ...(status === undefined ? { error: new Error('socket hang up') } : { status }),
      ...(reason === undefined ? {} : { response: { reason } }),
    }) as ResponseFailure;

  it.each([
    [410, 'Unregistered', 'gone'],
    [400, 'BadDeviceToken', 'gone'],
    [400, 'DeviceTokenNotForTopic', 'gone'],
    [429, 'TooManyRequests', 'retry'],
    [500, 'InternalServerError', 'retry'],
    [503, 'ServiceUnavailable', 'retry'],
    [400, 'BadCollapseId', 'failed'],
    [403, 'InvalidProviderToken', 'failed'],
  ])('%i %s: %s', (status, reason, outcome) => {
    expect(apnsFailureResult(apns(status, reason))).toEqual({
      outcome,
      reason: `apns ${status} ${reason}`,
    });
  });

  it('retries when no answer came (timeout, reset)', () => {
    expect(apnsFailureResult(apns(undefined))).toEqual({
      outcome: 'retry',
      reason: 'apns transport: socket hang up',
    });
  });
});

describe('FCM failures', () => {
  const body = (errorCode?: string, badRequest = false): object => ({
    error: {
      details: [
        ...(errorCode === undefined ? [] : [{ '@type': FCM_ERROR, errorCode }]),
        ...(badRequest ? [{ '@type': BAD_REQUEST, fieldViolations: [] }] : []),
      ],
    },
  });

  it('takes UNREGISTERED, and INVALID_ARGUMENT about the token, for a target gone', () => {
    expect(
      fcmFailureResult({ message: 'x', status: 404, body: body('UNREGISTERED') }, NOW),
    ).toEqual({ outcome: 'gone', reason: 'fcm 404 UNREGISTERED' });
    expect(
      fcmFailureResult({ message: 'x', status: 400, body: body('INVALID_ARGUMENT') }, NOW),
    ).toEqual({ outcome: 'gone', reason: 'fcm 400 INVALID_ARGUMENT' });
  });

  it('drops a message the request itself was wrong for (INVALID_ARGUMENT with BadRequest)', () => {
    expect(
      fcmFailureResult({ message: 'x', status: 400, body: body('INVALID_ARGUMENT', true) }, NOW),
    ).toEqual({ outcome: 'failed', reason: 'fcm 400 INVALID_ARGUMENT' });
  });

  it('retries 429/503 at their Retry-After, in seconds or as a date', () => {
    expect(
      fcmFailureResult(
        { message: 'x', status: 429, retryAfter: '7', body: body('QUOTA_EXCEEDED') },
        NOW,
      ),
    ).toEqual({ outcome: 'retry', reason: 'fcm 429 QUOTA_EXCEEDED', retryAfterMs: 7000 });
    const at = new Date(NOW + 30_000).toUTCString();
    expect(fcmFailureResult({ message: 'x', status: 503, retryAfter: at }, NOW)).toEqual({
      outcome: 'retry',
      reason: 'fcm 503',
      retryAfterMs: 30_000,
    });
    expect(fcmFailureResult({ message: 'x', status: 500 }, NOW)).toEqual({
      outcome: 'retry',
      reason: 'fcm 500',
    });
  });

  it('retries without an answer, drops other refusals', () => {
    expect(fcmFailureResult({ message: 'ECONNRESET' }, NOW)).toEqual({
      outcome: 'retry',
      reason: 'fcm transport: ECONNRESET',
    });
    expect(
      fcmFailureResult({ message: 'x', status: 403, body: body('SENDER_ID_MISMATCH') }, NOW),
    ).toEqual({ outcome: 'failed', reason: 'fcm 403 SENDER_ID_MISMATCH' });
  });
});

describe('Web Push failures', () => {
  it.each([
    [404, 'gone'],
    [410, 'gone'],
    [413, 'failed'],
    [400, 'failed'],
    [500, 'retry'],
  ])('%i: %s', (statusCode, outcome) => {
    expect(webPushFailureResult({ statusCode, message: 'x' }, NOW)).toEqual({
      outcome,
      reason: `webpush ${statusCode}`,
    });
  });

  it('retries 429 at its Retry-After', () => {
    expect(
      webPushFailureResult({ statusCode: 429, headers: { 'retry-after': '12' } }, NOW),
    ).toEqual({ outcome: 'retry', reason: 'webpush 429', retryAfterMs: 12_000 });
  });

  it('retries socket errors and timeouts, drops what the library refused to send', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(webPushFailureResult(reset, NOW)).toEqual({
      outcome: 'retry',
      reason: 'webpush transport: read ECONNRESET',
    });
    expect(webPushFailureResult(new Error('Socket timeout'), NOW)).toEqual({
      outcome: 'retry',
      reason: 'webpush transport: Socket timeout',
    });
    expect(
      webPushFailureResult(new Error('The subscription p256dh value should be 65 bytes'), NOW),
    ).toEqual({
      outcome: 'failed',
      reason: 'webpush request: The subscription p256dh value should be 65 bytes',
    });
  });
});
