/**
 * Uploading attachment bytes straight to object storage with a presigned POST (the node only
 * hands out the target). Works with the global fetch, FormData and Blob of Node 20 and
 * browsers.
 */
import { ChatError } from '@chat/protocol';

/** What `uploadAttachment` accepts. Streams are read to the end first: the policy needs the exact size. */
export type UploadData =
  Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** A presigned POST: the form goes to `url` with `fields`, then the file. */
export interface UploadForm {
  readonly url: string;
  readonly fields?: Readonly<Record<string, string>>;
}

export type UploadFetch = (
  url: string,
  init: { method: 'POST'; body: FormData },
) => Promise<{ readonly ok: boolean; readonly status: number; text(): Promise<string> }>;

/** The bytes as a Blob of the given type. */
export async function toBlob(data: UploadData, mime: string): Promise<Blob> {
  if (data instanceof Blob) return data.type === mime ? data : new Blob([data], { type: mime });
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    return new Blob([data as BlobPart], { type: mime });
  }
  const chunks: Uint8Array[] = [];
  if (typeof (data as ReadableStream<Uint8Array>).getReader === 'function') {
    const reader = (data as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
  } else {
    for await (const chunk of data as AsyncIterable<Uint8Array>) chunks.push(chunk);
  }
  return new Blob(chunks as BlobPart[], { type: mime });
}

/**
 * POSTs the form: the policy fields first, the file last (S3 ignores fields after it).
 * BAD_REQUEST when storage refuses the upload (expired, wrong size or type), UNAVAILABLE when
 * it cannot be reached or fails.
 *
 * @example
 * await postUpload(await client.uploadTarget('image/png', blob.size), blob);
 */
export async function postUpload(
  form: UploadForm,
  blob: Blob,
  fetchImpl: UploadFetch = globalThis.fetch as unknown as UploadFetch,
): Promise<void> {
  const body = new FormData();
  for (const [name, value] of Object.entries(form.fields ?? {})) body.append(name, value);
  body.append('file', blob, 'upload');
  let res: Awaited<ReturnType<UploadFetch>>;
  try {
    res = await fetchImpl(form.url, { method: 'POST', body });
  } catch (err) {
    throw new ChatError('UNAVAILABLE', 'object storage is unreachable', {
      cause: err instanceof Error ? err.message : String(err),
    });
  }
  if (res.ok) return;
  const text = await res.text().catch(() => '');
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? String(res.status);
  throw new ChatError(
    res.status >= 500 ? 'UNAVAILABLE' : 'BAD_REQUEST',
    `object storage refused the upload: ${code}`,
    { status: res.status },
  );
}
