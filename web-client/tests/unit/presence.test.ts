import { describe, expect, it } from "vitest";
import { describePresence, lastSeenText } from "../../src/presence/presence";

const MINUTE = 60_000;

describe("lastSeenText", () => {
  it("says how long ago in the largest whole unit", () => {
    expect(lastSeenText(20_000)).toBe("last seen just now");
    expect(lastSeenText(MINUTE)).toBe("last seen 1 minute ago");
    expect(lastSeenText(5 * MINUTE + 30_000)).toBe("last seen 5 minutes ago");
    expect(lastSeenText(3 * 60 * MINUTE)).toBe("last seen 3 hours ago");
    expect(lastSeenText(2 * 24 * 60 * MINUTE)).toBe("last seen 2 days ago");
  });
});

describe("describePresence", () => {
  const now = 1_000_000_000;
  it("shows Online for online users", () => {
    expect(describePresence({ presence: "online", currentlyActive: true, lastActiveTs: now }, now)).toEqual({
      state: "online",
      label: "Online",
    });
  });

  it("shows when offline and idle users were last seen", () => {
    expect(describePresence({ presence: "offline", lastActiveTs: now - 5 * MINUTE }, now)).toEqual({
      state: "offline",
      label: "last seen 5 minutes ago",
    });
    expect(describePresence({ presence: "unavailable", lastActiveTs: now - 7 * MINUTE }, now).label).toBe(
      "Away, last seen 7 minutes ago",
    );
  });

  it("never says Offline (the connection banner's word), even without a last-active time", () => {
    const label = describePresence({}, now).label;
    expect(label).toBe("Not online");
    expect(label).not.toMatch(/offline/i);
  });
});
