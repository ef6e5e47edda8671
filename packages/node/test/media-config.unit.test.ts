import { ConfigError } from '@chat/cluster';
import { mediaConfigFromEnv } from '../src/media-config';

const base = {
  CHAT_S3_ENDPOINT: 'http://127.0.0.1:9000',
  CHAT_S3_ACCESS_KEY: 'ak',
  CHAT_S3_SECRET_KEY: 'sk',
};

describe('mediaConfigFromEnv', () => {
  it('is off without an endpoint', () => {
    expect(mediaConfigFromEnv({})).toBeUndefined();
  });

  it('has the documented defaults', () => {
    expect(mediaConfigFromEnv(base)).toMatchObject({
      endpoint: 'http://127.0.0.1:9000',
      publicEndpoint: 'http://127.0.0.1:9000',
      bucket: 'chat-media',
      region: 'us-east-1',
      urlTtlSec: 900,
      maxBytes: 16 * 1024 * 1024,
      allowedTypes: expect.arrayContaining(['image/png', 'video/*', 'application/pdf']),
    });
  });

  it('reads every setting', () => {
    expect(
      mediaConfigFromEnv({
        ...base,
        CHAT_S3_ENDPOINT: 'http://minio:9000/',
        CHAT_S3_PUBLIC_ENDPOINT: 'https://media.example.com',
        CHAT_S3_BUCKET: 'media.prod',
        CHAT_S3_REGION: 'eu-west-1',
        CHAT_MEDIA_URL_TTL_SEC: '60',
        CHAT_MEDIA_MAX_BYTES: '1024',
        CHAT_MEDIA_TYPES: 'image/*, Application/PDF',
      }),
    ).toMatchObject({
      endpoint: 'http://minio:9000',
      publicEndpoint: 'https://media.example.com',
      bucket: 'media.prod',
      region: 'eu-west-1',
      urlTtlSec: 60,
      maxBytes: 1024,
      allowedTypes: ['image/*', 'application/pdf'],
    });
  });

  it.each([
    [{ CHAT_S3_ENDPOINT: 'ftp://x' }, /CHAT_S3_ENDPOINT/],
    [{ CHAT_S3_ENDPOINT: 'http://x/bucket' }, /CHAT_S3_ENDPOINT/],
    [{ CHAT_S3_PUBLIC_ENDPOINT: 'media.example.com' }, /CHAT_S3_PUBLIC_ENDPOINT/],
    [{ CHAT_S3_SECRET_KEY: '' }, /CHAT_S3_SECRET_KEY/],
    [{ CHAT_S3_BUCKET: 'Bad_Bucket' }, /CHAT_S3_BUCKET/],
    [{ CHAT_MEDIA_TYPES: 'image' }, /CHAT_MEDIA_TYPES/],
    [{ CHAT_MEDIA_MAX_BYTES: '0' }, /CHAT_MEDIA_MAX_BYTES/],
  ])('names the variable of a bad value: %j', (env, name) => {
    expect(() => mediaConfigFromEnv({ ...base, ...env })).toThrow(ConfigError);
    expect(() => mediaConfigFromEnv({ ...base, ...env })).toThrow(name);
  });
});
