/**
 * Typing notifications, both ways.  spec: client-server-api/modules/typing_notifications.md
 */

/** What the indicator says for the members typing (names in a stable order). */
export function typingText(names: readonly string[]): string {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  if (names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
  return `${names[0]}, ${names[1]} and ${names.length - 2} others are typing…`;
}

/** The server forgets a typing notification after this long unless it is renewed. */
export const TYPING_TIMEOUT_MS = 30_000;

/**
 * Throttles the composer's typing notifications: "typing" once when typing starts and
 * again before the server's timeout runs out, "stopped" after a pause, on send and when
 * the text is cleared — instead of one request per keystroke.
 */
export class TypingNotifier {
  private typing = false;
  private lastStartTs = 0;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly send: (typing: boolean) => void,
    private readonly options = { renewAfterMs: 20_000, idleAfterMs: 10_000 },
    private readonly now: () => number = Date.now,
  ) {}

  /** The text of the composer changed. */
  input(text: string): void {
    if (text.trim() === "") {
      this.stop();
      return;
    }
    if (!this.typing || this.now() - this.lastStartTs >= this.options.renewAfterMs) {
      this.typing = true;
      this.lastStartTs = this.now();
      this.send(true);
    }
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(), this.options.idleAfterMs);
  }

  /** Sent, cleared, paused or left: tell the others at once rather than letting it time out. */
  stop(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (!this.typing) return;
    this.typing = false;
    this.send(false);
  }
}
