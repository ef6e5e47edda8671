/**
 * Importing @chat/testkit stays cheap: jest loads modules afresh for every test file, so whatever
 * the barrel loads at import, every test file pays (playwright-core and @peculiar/x509 took
 * about 3 s together). They load when a browser or a CA is asked for.
 */
const mockLoaded: string[] = [];
jest.mock('playwright-core', () => {
  mockLoaded.push('playwright-core');
  return jest.requireActual('playwright-core');
});
jest.mock('@peculiar/x509', () => {
  mockLoaded.push('@peculiar/x509');
  return jest.requireActual('@peculiar/x509');
});

it('loads neither playwright-core nor @peculiar/x509 until they are used', async () => {
  const testkit = await import('../src/index');
  expect(mockLoaded).toEqual([]);
  const ca = await testkit.createLocalCa();
  expect(ca.cert).toContain('BEGIN CERTIFICATE');
  expect(mockLoaded).toEqual(['@peculiar/x509']);
});
