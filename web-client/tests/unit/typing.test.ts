import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TypingNotifier, typingText } from "../../src/ui/timeline/typing";

describe("typingText", () => {
  it("names who is typing", () => {
    expect(typingText([])).toBe("");
    expect(typingText(["Alice"])).toBe("Alice is typing…");
    expect(typingText(["Alice", "Bob"])).toBe("Alice and Bob are typing…");
    expect(typingText(["A", "B", "C"])).toBe("A, B and C are typing…");
    expect(typingText(["A", "B", "C", "D", "E"])).toBe("A, B and 3 others are typing…");
  });
});

describe("TypingNotifier", () => {
  let now = 0;
  beforeEach(() => {
    vi.useFakeTimers();
    now = 0;
  });
  afterEach(() => vi.useRealTimers());

  const make = () => {
    const sent: boolean[] = [];
    const notifier = new TypingNotifier((typing) => sent.push(typing), { renewAfterMs: 20_000, idleAfterMs: 5_000 }, () => now);
    return { sent, notifier };
  };

  it("sends 'typing' once per burst of keystrokes, renewed before the server forgets it", () => {
    const { sent, notifier } = make();
    for (let i = 0; i < 10; i++) {
      now += 1000;
      notifier.input("hello".slice(0, (i % 5) + 1));
    }
    expect(sent).toEqual([true]);
    now += 20_000;
    notifier.input("hello again");
    expect(sent).toEqual([true, true]);
  });

  it("sends 'stopped' after a pause, on clear and on stop, but only once", () => {
    const { sent, notifier } = make();
    notifier.input("h");
    vi.advanceTimersByTime(5_000);
    expect(sent).toEqual([true, false]);
    notifier.input("hi");
    notifier.input("");
    expect(sent).toEqual([true, false, true, false]);
    notifier.stop();
    expect(sent).toEqual([true, false, true, false]);
  });
});
