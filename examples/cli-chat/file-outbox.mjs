/**
 * An outbox store for @chat/client in one JSON file (Node): what was sent and not yet
 * acknowledged when the program stopped is sent again by the next run, with the same
 * clientMsgId, so the node stores it once. Small outboxes only: every change rewrites the file
 * (to a temporary file, then renamed over it, so a crash leaves the old or the new content).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

export class FileOutboxStore {
  /** @param {string} file */
  constructor(file) {
    this.file = file;
  }

  /** @returns {import('@chat/client').PendingSend[]} */
  load() {
    try {
      return JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (err) {
      if (err.code === 'ENOENT') return [];
      throw err;
    }
  }

  /** @param {import('@chat/client').PendingSend} send */
  save(send) {
    const rest = this.load().filter((s) => !sameSend(s, send.chatId, send.clientMsgId));
    this.write([...rest, send]);
  }

  remove(chatId, clientMsgId) {
    this.write(this.load().filter((s) => !sameSend(s, chatId, clientMsgId)));
  }

  write(sends) {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(sends));
    renameSync(tmp, this.file);
  }
}

function sameSend(send, chatId, clientMsgId) {
  return send.chatId === chatId && send.clientMsgId === clientMsgId;
}
