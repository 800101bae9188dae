// Push notifications on this browser: the permission (asked only from a click on "Enable
// notifications"), the service worker's push subscription, and the server's copy of it. Nothing is
// stored by the app: the browser holds the subscription, the server the registration.

import { describeError, type Api } from "../api/client";
import { sameServerKey, subscriptionInput, urlBase64ToUint8Array } from "../push/keys";
import { OPEN_CONVERSATION, SHOWN_CONVERSATION } from "../push/notification";

export type PushStatus =
  /** No service workers, Push API or notifications in this browser (or not a secure context). */
  | "unsupported"
  /** The browser's permission for notifications is denied: only its site settings can change that. */
  | "blocked"
  /** Not subscribed here: the permission not asked yet, or granted and notifications disabled. */
  | "off"
  /** Subscribed here, and the server has the subscription. */
  | "on";

/** The parts of a browser's `PushSubscription` used here. */
export interface Subscription {
  readonly endpoint: string;
  readonly options: { readonly applicationServerKey: ArrayBuffer | null };
  toJSON(): PushSubscriptionJSON;
  unsubscribe(): Promise<boolean>;
}

/** The parts of a `ServiceWorkerRegistration` used here. */
export interface Registration {
  readonly pushManager: {
    getSubscription(): Promise<Subscription | null>;
    subscribe(options: PushSubscriptionOptionsInit): Promise<Subscription>;
  };
}

/** The browser's side (the tests put their own). */
export interface PushBrowser {
  /** The notification permission; null when this browser cannot do push. */
  permission(): NotificationPermission | null;
  requestPermission(): Promise<NotificationPermission>;
  /** The service worker's registration, if there is one (never registers it). */
  registration(): Promise<Registration | undefined>;
  /** Registers the service worker; its registration once a worker is active. */
  register(): Promise<Registration>;
}

/** Where the build puts the service worker (vite.config.ts): its scope is the whole app. */
export const SERVICE_WORKER_URL = "/sw.js";

export function browserPush(): PushBrowser {
  const supported = () =>
    typeof navigator !== "undefined" &&
    "serviceWorker" in navigator &&
    typeof PushManager !== "undefined" &&
    typeof Notification !== "undefined";
  return {
    permission: () => (supported() ? Notification.permission : null),
    requestPermission: () => Notification.requestPermission(),
    registration: () => navigator.serviceWorker.getRegistration(),
    register: async () => {
      await navigator.serviceWorker.register(SERVICE_WORKER_URL);
      return navigator.serviceWorker.ready;
    },
  };
}

export class PushState {
  status: PushStatus;
  busy = false;
  error: string | null = null;
  /** The server's id of this browser's subscription, once an answer gave it. */
  private registered: { endpoint: string; id: string } | null = null;
  /** One change at a time (a check at start, a click). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly api: Api,
    private readonly changed: () => void,
    private readonly browser: PushBrowser = browserPush(),
  ) {
    this.status = this.fromPermission();
  }

  private fromPermission(): PushStatus {
    const permission = this.browser.permission();
    return permission === null ? "unsupported" : permission === "denied" ? "blocked" : "off";
  }

  /** Runs after the one running; busy meanwhile, and its error shown (never thrown). */
  private run(task: () => Promise<PushStatus>): Promise<void> {
    this.busy = true;
    this.error = null;
    this.changed();
    const next = this.queue.then(task).then(
      (status) => {
        this.status = status;
      },
      (error: unknown) => {
        this.error = describeError(error);
      },
    );
    this.queue = next.finally(() => {
      this.busy = false;
      this.changed();
    });
    return this.queue as Promise<void>;
  }

  /**
   * At start, signed in: when notifications are on here, the server gets this browser's subscription
   * again (idempotent), or, when the server's key is not the one it was made with (rotated), a new one.
   * Never asks for the permission.
   */
  check(): Promise<void> {
    return this.run(async () => {
      if (this.browser.permission() !== "granted") return this.fromPermission();
      const registration = await this.browser.registration();
      const subscription = await registration?.pushManager.getSubscription();
      if (!registration || !subscription) return "off";
      this.status = "on"; // the browser has it, whatever the server says next
      const { publicKey } = await this.api.vapidPublicKey();
      if (sameServerKey(subscription.options.applicationServerKey, publicKey)) await this.register(subscription);
      else await this.resubscribe(registration, subscription, publicKey);
      return "on";
    });
  }

  /** From a click: the browser's permission prompt, then the subscription, registered with the server. */
  enable(): Promise<void> {
    if (this.browser.permission() === null) return Promise.resolve();
    // Asked at once, in the click's task (a browser may refuse a prompt not started by the user).
    const permission = this.browser.requestPermission();
    return this.run(async () => {
      const answer = await permission;
      if (answer !== "granted") return answer === "denied" ? "blocked" : "off";
      const registration = await this.browser.register();
      const { publicKey } = await this.api.vapidPublicKey();
      const held = await registration.pushManager.getSubscription();
      if (held && sameServerKey(held.options.applicationServerKey, publicKey)) await this.register(held);
      else await this.resubscribe(registration, held, publicKey);
      return "on";
    });
  }

  /** Unsubscribes here, and the server forgets the subscription. */
  disable(): Promise<void> {
    return this.run(async () => {
      await this.dropHeld();
      return this.fromPermission();
    });
  }

  /** On signing out: this browser stops getting the account's notifications (best effort, no error shown). */
  async signOut(): Promise<void> {
    if (this.browser.permission() === null) return;
    try {
      await this.queue;
      await this.dropHeld();
    } catch {
      // Signed out anyway; the server drops an endpoint the push service no longer takes.
    }
    this.registered = null;
    this.status = this.fromPermission();
  }

  private async dropHeld() {
    const registration = await this.browser.registration();
    const subscription = await registration?.pushManager.getSubscription();
    if (subscription) await this.drop(subscription);
  }

  private async register(subscription: Subscription) {
    const device = await this.api.addPushSubscription(subscriptionInput(subscription.toJSON()));
    this.registered = { endpoint: subscription.endpoint, id: device.id };
  }

  /** The server forgets a subscription (its id: what registering it again answers), then the browser. */
  private async drop(subscription: Subscription) {
    if (this.registered?.endpoint !== subscription.endpoint) await this.register(subscription);
    await this.api.deletePushSubscription(this.registered!.id);
    this.registered = null;
    await subscription.unsubscribe();
  }

  /** A subscription with the server's current key, in place of `old` (made with another one). */
  private async resubscribe(registration: Registration, old: Subscription | null, publicKey: string) {
    if (old) await this.drop(old);
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: urlBase64ToUint8Array(publicKey),
    });
    await this.register(subscription);
  }
}

/**
 * The app's side of the service worker's messages: a click on a notification opens its conversation
 * (`open`), and the worker asks which conversation is in view (`shown`) before showing one. Returns
 * what stops listening.
 */
export function listenToServiceWorker(open: (conversationId: string) => void, shown: () => string | null): () => void {
  if (typeof navigator === "undefined" || !("serviceWorker" in navigator)) return () => {};
  const container = navigator.serviceWorker;
  const listener = (event: MessageEvent) => {
    const data = event.data as { type?: unknown; conversationId?: unknown } | null;
    if (data?.type === OPEN_CONVERSATION && typeof data.conversationId === "string") open(data.conversationId);
    else if (data?.type === SHOWN_CONVERSATION) event.ports[0]?.postMessage(shown());
  };
  container.addEventListener("message", listener);
  container.startMessages();
  return () => container.removeEventListener("message", listener);
}
