/**
 * A local S3-compatible server (s3rver) as a child process, for tests and local runs:
 * `node --import tsx s3-server.ts '{"port":0,"directory":"/tmp/..."}'`. Prints
 * `{"ready":true,"port":...}` once listening (or `{"error":...}` and exits 1), and exits when
 * stdin closes (its parent died) or on SIGTERM/SIGINT. The data directory belongs to the
 * parent, so the server can be stopped and started again on the same port with its objects.
 */
import S3rver from 's3rver';

/**
 * Browsers (the web chat page) POST uploads to storage from another origin and read the reply:
 * without a CORS rule s3rver omits Access-Control-Allow-Origin and fetch() fails. MinIO allows
 * any origin by default; this gives the local bucket the same.
 */
const CORS_ANY_ORIGIN = `<CORSConfiguration>
  <CORSRule>
    <AllowedOrigin>*</AllowedOrigin>
    <AllowedMethod>GET</AllowedMethod>
    <AllowedMethod>POST</AllowedMethod>
    <AllowedMethod>PUT</AllowedMethod>
    <AllowedHeader>*</AllowedHeader>
    <MaxAgeSeconds>3000</MaxAgeSeconds>
  </CORSRule>
</CORSConfiguration>`;

/** The bucket nodes use unless told otherwise (see `nodeEnv` in s3.ts). */
const DEFAULT_BUCKET = 'chat-media';

interface ServerOptions {
  readonly port?: number;
  readonly directory: string;
}

function reply(value: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as ServerOptions;
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0,
    directory: options.directory,
    silent: true,
    // Path-style URLs only: 127.0.0.1 has no bucket subdomains.
    vhostBuckets: false,
    configureBuckets: [{ name: DEFAULT_BUCKET, configs: [CORS_ANY_ORIGIN] }],
  });
  const address = await server.run();
  const stop = (): void => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  reply({ ready: true, port: address.port });
}

main().catch((err: unknown) => {
  reply({ error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
