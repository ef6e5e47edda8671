import { ChatError } from '@chat/protocol';
import {
  DEFAULT_ALLOWED_TYPES,
  checkAttachmentRefs,
  checkDeclared,
  isTypeAllowed,
  keyOwner,
  newObjectKey,
} from '../src/index';
import { checkUploaded } from '../src/policy';

const limits = { maxBytes: 1000, allowedTypes: DEFAULT_ALLOWED_TYPES };

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (err) {
    return err instanceof ChatError ? err.code : 'not a ChatError';
  }
  return undefined;
}

describe('media policy', () => {
  it('allows exact types and whole top-level types, case-insensitively', () => {
    expect(isTypeAllowed('image/PNG', DEFAULT_ALLOWED_TYPES)).toBe(true);
    expect(isTypeAllowed('video/mp4', DEFAULT_ALLOWED_TYPES)).toBe(true);
    expect(isTypeAllowed('application/pdf', DEFAULT_ALLOWED_TYPES)).toBe(true);
    expect(isTypeAllowed('image/svg+xml', DEFAULT_ALLOWED_TYPES)).toBe(false);
    expect(isTypeAllowed('text/html', DEFAULT_ALLOWED_TYPES)).toBe(false);
    expect(isTypeAllowed('image/png; charset=x', DEFAULT_ALLOWED_TYPES)).toBe(false);
    expect(isTypeAllowed('image', DEFAULT_ALLOWED_TYPES)).toBe(false);
  });

  it('checks declared size before type, and refuses empty files', () => {
    expect(checkDeclared('Image/Png', 1000, limits)).toBe('image/png');
    expect(codeOf(() => checkDeclared('text/html', 1001, limits))).toBe('TOO_LARGE');
    expect(codeOf(() => checkDeclared('text/html', 10, limits))).toBe('BAD_REQUEST');
    expect(codeOf(() => checkDeclared('image/png', 0, limits))).toBe('BAD_REQUEST');
  });

  it('makes keys under the user prefix and reads the owner back', () => {
    const key = newObjectKey('alice.b-1', new Uint8Array(18).fill(7));
    expect(key).toMatch(/^u\/alice\.b-1\/[A-Za-z0-9_-]{24}$/);
    expect(keyOwner(key)).toBe('alice.b-1');
    expect(keyOwner('u/alice/short')).toBeUndefined();
    expect(keyOwner('u/alice/../bob/aaaaaaaaaaaaaaaaaaaa')).toBeUndefined();
    expect(keyOwner('x/alice/aaaaaaaaaaaaaaaaaaaaaaaa')).toBeUndefined();
  });

  it('refuses references to keys of other users and repeated keys', () => {
    const mine = { key: newObjectKey('alice', new Uint8Array(18)), mime: 'image/png', size: 5 };
    const theirs = { ...mine, key: newObjectKey('bob', new Uint8Array(18)) };
    expect(checkAttachmentRefs('alice', [mine], limits)).toEqual([mine]);
    expect(codeOf(() => checkAttachmentRefs('alice', [theirs], limits))).toBe('BAD_REQUEST');
    expect(codeOf(() => checkAttachmentRefs('alice', [mine, mine], limits))).toBe('BAD_REQUEST');
    expect(codeOf(() => checkAttachmentRefs('alice', [{ ...mine, size: 1001 }], limits))).toBe(
      'TOO_LARGE',
    );
  });

  it('compares the stored object with the reference', () => {
    const ref = { key: 'u/a/k', mime: 'image/png', size: 5 };
    expect(() => checkUploaded(ref, { size: 5, contentType: 'IMAGE/png' })).not.toThrow();
    expect(codeOf(() => checkUploaded(ref, { size: 6, contentType: 'image/png' }))).toBe(
      'BAD_REQUEST',
    );
    expect(codeOf(() => checkUploaded(ref, { size: 5, contentType: 'text/plain' }))).toBe(
      'BAD_REQUEST',
    );
    expect(codeOf(() => checkUploaded(ref, { size: 5, contentType: undefined }))).toBe(
      'BAD_REQUEST',
    );
  });
});
