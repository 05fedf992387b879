// The timeline's keyboard model (one Tab stop, arrows between messages) and where the
// "New messages" divider goes.
import { beforeEach, describe, expect, it } from "vitest";
import { applyRovingFocus, focusTargetForKey } from "../../src/ui/timeline/rovingFocus";
import { firstUnreadMessage } from "../../src/ui/timeline/newMessages";

let list: HTMLOListElement;
const articles = () => Array.from(list.querySelectorAll<HTMLElement>("article.message"));

beforeEach(() => {
  document.body.innerHTML = `
    <ol>
      <li><article class="message" data-event-id="$1"><a href="https://x.test">link</a>
        <div class="message-actions"><button>Reply</button><button>React</button></div></article></li>
      <li><article class="message" data-event-id="$2"><span tabindex="0" data-mx-spoiler>s</span>
        <div class="message-actions"><button>Reply</button></div></article></li>
      <li><article class="message" data-event-id="$3"><div class="message-actions"><button>Reply</button></div></article></li>
    </ol>`;
  list = document.querySelector("ol")!;
});

describe("applyRovingFocus", () => {
  it("puts only the last message and its controls in the Tab order by default", () => {
    const active = applyRovingFocus(list, null);
    expect(active?.dataset.eventId).toBe("$3");
    expect(articles().map((article) => article.tabIndex)).toEqual([-1, -1, 0]);
    expect(Array.from(list.querySelectorAll<HTMLElement>("button, a, [data-mx-spoiler]")).map((control) => control.tabIndex)).toEqual([-1, -1, -1, -1, -1, 0]);
  });

  it("gives a message's controls back their own tabindex when it becomes active", () => {
    applyRovingFocus(list, null);
    applyRovingFocus(list, articles()[1]!);
    const spoiler = list.querySelector<HTMLElement>("[data-mx-spoiler]")!;
    expect(spoiler.getAttribute("tabindex")).toBe("0");
    expect(articles()[1]!.querySelector("button")!.hasAttribute("tabindex")).toBe(false);
    expect(articles()[2]!.querySelector("button")!.tabIndex).toBe(-1);
  });
});

describe("focusTargetForKey", () => {
  it("moves between messages with the arrows, Home and End, and into the actions with Enter", () => {
    const [first, second, third] = articles();
    expect(focusTargetForKey(list, second!, "ArrowUp", false)).toBe(first);
    expect(focusTargetForKey(list, second!, "ArrowDown", false)).toBe(third);
    expect(focusTargetForKey(list, third!, "ArrowDown", false)).toBe(third);
    expect(focusTargetForKey(list, third!, "Home", false)).toBe(first);
    expect(focusTargetForKey(list, first!, "End", false)).toBe(third);
    expect(focusTargetForKey(list, first!, "Enter", false)?.textContent).toBe("Reply");
    expect(focusTargetForKey(list, first!, "F10", true)?.textContent).toBe("Reply");
  });

  it("leaves keys inside a control alone, except Escape back to the message", () => {
    const button = articles()[0]!.querySelector("button")!;
    expect(focusTargetForKey(list, button, "ArrowDown", false)).toBeNull();
    expect(focusTargetForKey(list, button, "Enter", false)).toBeNull();
    expect(focusTargetForKey(list, button, "Escape", false)).toBe(articles()[0]);
  });
});

describe("firstUnreadMessage", () => {
  const events = [
    { id: "$a", sender: "@bob:hs", isMessage: true },
    { id: "$b", sender: "@me:hs", isMessage: true },
    { id: "$state", sender: "@bob:hs", isMessage: false },
    { id: "$c", sender: "@bob:hs", isMessage: true },
  ];
  it("is the first message from someone else after the receipt", () => {
    expect(firstUnreadMessage(events, "$a", "@me:hs")).toBe("$c");
  });
  it("is null when all is read or the receipt is not loaded", () => {
    expect(firstUnreadMessage(events, "$c", "@me:hs")).toBeNull();
    expect(firstUnreadMessage(events, "$old", "@me:hs")).toBeNull();
    expect(firstUnreadMessage(events, null, "@me:hs")).toBeNull();
  });
  it("falls back on the unread count when the receipt is not loaded", () => {
    expect(firstUnreadMessage(events, "$old", "@me:hs", 1)).toBe("$c");
    expect(firstUnreadMessage(events, null, "@me:hs", 2)).toBe("$a");
    expect(firstUnreadMessage(events, null, "@me:hs", 9)).toBe("$a");
  });
});
