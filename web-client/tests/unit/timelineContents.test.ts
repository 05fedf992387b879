import { describe, expect, it } from "vitest";
import { reaction, replacement, textMessage } from "../../src/ui/timeline/contents";
import { stripReplyFallback } from "../../src/ui/timeline/MessageBody";

describe("timeline contents", () => {
  it("builds a reply with m.in_reply_to", () => {
    expect(textMessage("hi")).toEqual({ msgtype: "m.text", body: "hi" });
    expect(textMessage("yes", "$q")).toEqual({
      msgtype: "m.text",
      body: "yes",
      "m.relates_to": { "m.in_reply_to": { event_id: "$q" } },
    });
  });

  it("builds an edit with m.new_content and an m.replace relation", () => {
    expect(replacement("$orig", "fixed")).toEqual({
      msgtype: "m.text",
      body: "* fixed",
      "m.new_content": { msgtype: "m.text", body: "fixed" },
      "m.relates_to": { rel_type: "m.replace", event_id: "$orig" },
    });
  });

  it("builds an annotation", () => {
    expect(reaction("$m", "👍")).toEqual({ "m.relates_to": { rel_type: "m.annotation", event_id: "$m", key: "👍" } });
  });

  it("strips the quoted fallback of older clients' replies", () => {
    expect(stripReplyFallback("> <@a:hs> question\n> more\n\nanswer")).toBe("answer");
    expect(stripReplyFallback("plain > text")).toBe("plain > text");
  });
});
