/**
 * Drives the web chat page in a real browser the way a person would (forms, buttons, file
 * picker) and reads back what the page shows. Every wait polls the page with a deadline.
 */
import type { BrowserContext, Page } from 'playwright-core';

const WAIT_MS = 20_000;

export type Ticks = 'pending' | 'failed' | 'sent' | 'delivered' | 'read';

export class ChatPageDriver {
  private constructor(
    readonly page: Page,
    readonly user: string,
  ) {}

  /** Opens `/chat/` signed in as user/device (same context = same browser storage). */
  static async open(
    context: BrowserContext,
    registryUrl: string,
    user: string,
    device: string,
  ): Promise<ChatPageDriver> {
    const page = await context.newPage();
    await page.setViewportSize({ width: 1100, height: 700 });
    await page.goto(`${registryUrl}/chat/?user=${user}&device=${device}`);
    const driver = new ChatPageDriver(page, user);
    await driver.waitConnected();
    return driver;
  }

  /** Waits until the page says it is connected, and returns the node it names. */
  async waitConnected(node?: string): Promise<string> {
    const selector =
      node === undefined
        ? '#conn[data-status="ready"]'
        : `#conn[data-status="ready"][data-node="${node}"]`;
    await this.page.waitForSelector(selector, { timeout: WAIT_MS });
    return (await this.page.getAttribute('#conn', 'data-node')) ?? '';
  }

  async connection(): Promise<{ status: string; node: string; moves: number; text: string }> {
    return this.page.$eval('#conn', (el) => ({
      status: (el as HTMLElement).dataset.status ?? '',
      node: (el as HTMLElement).dataset.node ?? '',
      moves: Number((el as HTMLElement).dataset.moves),
      text: el.textContent ?? '',
    }));
  }

  async connectionLog(): Promise<string[]> {
    return this.page.$$eval('#conn-log li', (items) => items.map((li) => li.textContent ?? ''));
  }

  async createChat(members: string[], name?: string): Promise<string> {
    await this.page.fill('#new-chat input[name="members"]', members.join(', '));
    await this.page.fill('#new-chat input[name="name"]', name ?? '');
    await this.page.click('#new-chat button[type="submit"]');
    // The new chat opens: the composer shows and the list has it marked open.
    const item = await this.page.waitForSelector('.chat-item.open', { timeout: WAIT_MS });
    return (await item.getAttribute('data-chat-id')) ?? '';
  }

  async openChat(chatId: string): Promise<void> {
    await this.page.click(`.chat-item[data-chat-id="${chatId}"]`, { timeout: WAIT_MS });
    await this.page.waitForSelector(`.chat-item.open[data-chat-id="${chatId}"]`);
  }

  async waitForChat(chatId: string): Promise<void> {
    await this.page.waitForSelector(`.chat-item[data-chat-id="${chatId}"]`, { timeout: WAIT_MS });
  }

  async send(text: string): Promise<void> {
    await this.page.fill('#text', text);
    await this.page.press('#text', 'Enter');
  }

  /** Types like a person, a key every 150 ms (so typing lasts past the 2 s notice interval). */
  async typeSlowly(text: string): Promise<void> {
    await this.page.locator('#text').pressSequentially(text, { delay: 150 });
  }

  async sendImage(name: string, png: Buffer): Promise<void> {
    await this.page.setInputFiles('#attach', { name, mimeType: 'image/png', buffer: png });
  }

  /** Bodies of the open chat's messages, in the order shown. */
  async bodies(): Promise<string[]> {
    return this.page.$$eval('#messages .msg .body', (els) => els.map((e) => e.textContent ?? ''));
  }

  async waitForBodies(expected: string[]): Promise<void> {
    await this.page.waitForFunction(
      (want: string[]) => {
        const shown = Array.from(document.querySelectorAll('#messages .msg .body')).map(
          (e) => e.textContent,
        );
        return want.every((w) => shown.includes(w));
      },
      expected,
      { timeout: WAIT_MS },
    );
  }

  async waitForTicks(bodies: string[], ticks: Ticks): Promise<void> {
    await this.page.waitForFunction(
      ({ want, state }: { want: string[]; state: string }) => {
        const mine = Array.from(document.querySelectorAll<HTMLElement>('#messages .msg.mine'));
        return want.every((body) =>
          mine.some(
            (m) => m.querySelector('.body')?.textContent === body && m.dataset.ticks === state,
          ),
        );
      },
      { want: bodies, state: ticks },
      { timeout: WAIT_MS },
    );
  }

  async presence(): Promise<string> {
    return (await this.page.textContent('#chat-presence')) ?? '';
  }

  async waitForPresence(pattern: RegExp): Promise<string> {
    await this.page.waitForFunction(
      (source: string) =>
        new RegExp(source).test(document.querySelector('#chat-presence')?.textContent ?? ''),
      pattern.source,
      { timeout: WAIT_MS },
    );
    return this.presence();
  }

  async waitForTyping(user: string): Promise<void> {
    await this.page.waitForFunction(
      (who: string) =>
        (document.querySelector('#chat-typing')?.textContent ?? '').includes(`${who} is typing`),
      user,
      { timeout: WAIT_MS },
    );
  }

  /** Waits until an image attachment has loaded and returns its natural size. */
  async waitForImage(): Promise<{ width: number; height: number; src: string }> {
    const handle = await this.page.waitForFunction(
      () => {
        const img = document.querySelector<HTMLImageElement>('#messages img.attachment');
        return img !== null && img.complete && img.naturalWidth > 0
          ? { width: img.naturalWidth, height: img.naturalHeight, src: img.src }
          : null;
      },
      undefined,
      { timeout: WAIT_MS },
    );
    return (await handle.jsonValue()) as { width: number; height: number; src: string };
  }

  async unread(chatId: string): Promise<string> {
    return (await this.page.textContent(`.chat-item[data-chat-id="${chatId}"] .unread`)) ?? '';
  }

  close(): Promise<void> {
    return this.page.close();
  }
}
