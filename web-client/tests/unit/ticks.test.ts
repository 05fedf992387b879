import { describe, expect, it } from "vitest";
import { NO_MARKS, receiptMarks, tickAt } from "../../src/receipts/ticks";

const ids = ["$a", "$b", "$c", "$d"];

describe("receiptMarks", () => {
  it("takes the furthest position any other member's receipts reach", () => {
    const marks = receiptMarks(ids, [
      { delivered: "$c", read: "$a" },
      { delivered: "$b", read: "$b" },
    ]);
    expect(marks).toEqual({ deliveredUpTo: 2, readUpTo: 1 });
  });

  it("ignores receipts on events that are not loaded and members without receipts", () => {
    expect(receiptMarks(ids, [{ delivered: "$older", read: null }])).toEqual(NO_MARKS);
    expect(receiptMarks(ids, [])).toEqual(NO_MARKS);
  });
});

describe("tickAt", () => {
  it("is Sending until the server has the event", () => {
    expect(tickAt(null, { deliveredUpTo: 3, readUpTo: 3 })).toBe("Sending");
  });

  it("is Sent without a receipt at or after the event", () => {
    expect(tickAt(2, { deliveredUpTo: 1, readUpTo: 0 })).toBe("Sent");
  });

  it("is Delivered when a delivered receipt is on the event or a later one", () => {
    expect(tickAt(2, { deliveredUpTo: 2, readUpTo: -1 })).toBe("Delivered");
    expect(tickAt(1, { deliveredUpTo: 3, readUpTo: 0 })).toBe("Delivered");
  });

  it("is Seen when a read receipt covers it, even without a delivered receipt", () => {
    expect(tickAt(2, { deliveredUpTo: 3, readUpTo: 2 })).toBe("Seen");
    expect(tickAt(1, { deliveredUpTo: -1, readUpTo: 3 })).toBe("Seen");
  });

  it("moves Sent → Delivered → Seen for one message as the receipts arrive", () => {
    const position = ids.indexOf("$d");
    const progression = [
      receiptMarks(ids, [{ delivered: "$c", read: "$c" }]),
      receiptMarks(ids, [{ delivered: "$d", read: "$c" }]),
      receiptMarks(ids, [{ delivered: "$d", read: "$d" }]),
    ].map((marks) => tickAt(position, marks));
    expect(progression).toEqual(["Sent", "Delivered", "Seen"]);
  });
});
