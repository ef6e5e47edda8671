/** Client URLs through the TLS edge: the edge's origin is validated, and node URLs map onto it. */
import { clientWsUrl, edgeNodePath, parseEdgeUrl } from '../src/edge-url';

const node = { nodeId: 'node-1', wsUrl: 'ws://10.0.0.5:7001/ws' };

describe('parseEdgeUrl', () => {
  it('accepts an https origin and normalizes it', () => {
    expect(parseEdgeUrl('https://chat.example.com/', 'CHAT_EDGE_URL')).toBe(
      'https://chat.example.com',
    );
    expect(parseEdgeUrl('https://127.0.0.1:8443', 'CHAT_EDGE_URL')).toBe('https://127.0.0.1:8443');
  });

  it.each([
    ['not a url', 'must be an https:// URL'],
    ['http://chat.example.com', 'must be an https:// URL, got a http:// URL'],
    ['wss://chat.example.com', 'must be an https:// URL, got a wss:// URL'],
    ['https://user:pw@chat.example.com', 'must not carry credentials'],
    ['https://chat.example.com/chat', "must be the edge's origin only"],
    ['https://chat.example.com/?x=1', "must be the edge's origin only"],
  ])('refuses %s, naming the variable', (raw, message) => {
    expect(() => parseEdgeUrl(raw, 'CHAT_EDGE_URL')).toThrow(`CHAT_EDGE_URL ${message}`);
  });
});

describe('clientWsUrl', () => {
  it("is the node's own URL without an edge", () => {
    expect(clientWsUrl(node, undefined)).toBe('ws://10.0.0.5:7001/ws');
  });

  it("is the node's path on the edge, over wss, with one", () => {
    expect(clientWsUrl(node, 'https://chat.example.com')).toBe(
      'wss://chat.example.com/n/node-1/ws',
    );
    expect(clientWsUrl(node, 'https://127.0.0.1:8443')).toBe('wss://127.0.0.1:8443/n/node-1/ws');
    expect(edgeNodePath('node.2_b')).toBe('/n/node.2_b/ws');
  });
});
