// The service worker, served at `/sw.js` (built by vite.config.ts into one classic script, a fixed name:
// its URL is its identity). It only does push: shows a message's notification, and on a click brings
// the app to the conversation. No caching, no fetch handler: the app loads from the network as before.

import {
  notificationFor,
  OPEN_CONVERSATION,
  SHOWN_CONVERSATION,
  targetOf,
  conversationUrl,
  type OpenConversationMessage,
} from "./notification";

// The worker's globals, as far as used here (the project's TypeScript lib is the DOM's, not the worker's).
interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface PushEvent extends ExtendableEvent {
  readonly data: { text(): string } | null;
}
interface NotificationClickEvent extends ExtendableEvent {
  readonly notification: Notification;
}
interface WindowClient {
  readonly url: string;
  readonly focused: boolean;
  readonly visibilityState: DocumentVisibilityState;
  focus(): Promise<WindowClient>;
  postMessage(message: unknown, transfer?: Transferable[]): void;
}
interface WorkerScope {
  readonly registration: ServiceWorkerRegistration;
  readonly clients: {
    matchAll(options: { type: "window"; includeUncontrolled: boolean }): Promise<readonly WindowClient[]>;
    openWindow(url: string): Promise<WindowClient | null>;
    claim(): Promise<void>;
  };
  skipWaiting(): Promise<void>;
  addEventListener(type: "install" | "activate", listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: "push", listener: (event: PushEvent) => void): void;
  addEventListener(type: "notificationclick", listener: (event: NotificationClickEvent) => void): void;
}

const worker = self as unknown as WorkerScope;
/** How long a window has to say which conversation it shows before the notification shows anyway. */
const ASK_TIMEOUT_MS = 300;

function windows() {
  return worker.clients.matchAll({ type: "window", includeUncontrolled: true });
}

/** The conversation a window shows (its answer to `SHOWN_CONVERSATION`), null if none or no answer in time. */
function shownBy(client: WindowClient): Promise<string | null> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => resolve(null), ASK_TIMEOUT_MS);
    channel.port1.onmessage = (event) => {
      clearTimeout(timer);
      resolve(typeof event.data === "string" ? event.data : null);
    };
    client.postMessage({ type: SHOWN_CONVERSATION }, [channel.port2]);
  });
}

/** Is a focused window of the app showing this conversation now (the message is in front of the reader)? */
async function inView(conversationId: string): Promise<boolean> {
  const focused = (await windows()).filter((c) => c.focused && c.visibilityState === "visible");
  const shown = await Promise.all(focused.map(shownBy));
  return shown.includes(conversationId);
}

// A new version takes over at once: it holds no state, and the app does not depend on which one runs.
worker.addEventListener("install", (event) => event.waitUntil(worker.skipWaiting()));
worker.addEventListener("activate", (event) => event.waitUntil(worker.clients.claim()));

worker.addEventListener("push", (event) => {
  let data: string | null = null;
  try {
    data = event.data?.text() ?? null;
  } catch {
    data = null;
  }
  const { title, options } = notificationFor(data);
  event.waitUntil(
    (async () => {
      if (options.tag && (await inView(options.tag))) return;
      await worker.registration.showNotification(title, options);
    })(),
  );
});

worker.addEventListener("notificationclick", (event) => {
  const target = targetOf(event.notification.data);
  event.notification.close();
  event.waitUntil(
    (async () => {
      const all = await windows();
      const client = all.find((c) => c.focused) ?? all.find((c) => c.visibilityState === "visible") ?? all[0];
      if (client) {
        await client.focus().catch(() => client); // refused: the message still opens the conversation
        if (target) client.postMessage({ type: OPEN_CONVERSATION, conversationId: target.conversationId } satisfies OpenConversationMessage);
        return;
      }
      const root = worker.registration.scope;
      await worker.clients.openWindow(target ? conversationUrl(root, target.conversationId) : root);
    })(),
  );
});
