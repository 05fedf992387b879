// Message HTML: sanitized to the spec's tags and attributes before it is shown or
// sent; the composer's markdown; links in plain text.
import { describe, expect, it } from "vitest";
import { cleanHtml, displayHtml } from "../../src/format/html";
import { markdownToHtml } from "../../src/format/markdown";
import { linkifyParts } from "../../src/format/linkify";
import { replacement, textMessage } from "../../src/ui/timeline/contents";

function parse(html: string): HTMLElement {
  const holder = document.createElement("div");
  holder.innerHTML = html;
  return holder;
}

describe("displayHtml", () => {
  it("strips scripts, styles, event handlers and javascript: links", () => {
    const html = displayHtml(
      '<p onclick="alert(1)" style="color:red">hi</p><script>alert(2)</script><style>p{}</style>' +
        '<img src="x" onerror="alert(3)"><a href="javascript:alert(4)">bad</a><a href="  JaVaScRiPt:alert(5)">bad2</a>' +
        '<iframe src="https://evil.example"></iframe><svg><script>alert(6)</script></svg>',
    );
    const dom = parse(html);
    expect(html).not.toMatch(/alert|onclick|onerror|style=|<script|<iframe|<svg|javascript/i);
    expect(dom.querySelector("p")!.textContent).toBe("hi");
    expect(dom.querySelectorAll("a[href]")).toHaveLength(0);
    expect(dom.textContent).toContain("bad");
  });

  it("keeps the spec's tags and allowed attributes", () => {
    const source =
      "<h1>Title</h1><p><b>b</b> <i>i</i> <u>u</u> <strong>s</strong> <em>e</em> <del>d</del> <s>s</s> <sup>1</sup><sub>2</sub></p>" +
      '<blockquote>q</blockquote><ol start="3"><li>three</li></ol><ul><li>dot</li></ul><hr><br>' +
      '<pre><code class="language-ts evil">let x</code></pre><table><caption>c</caption><thead><tr><th>h</th></tr></thead><tbody><tr><td>d</td></tr></tbody></table>' +
      '<details><summary>more</summary>hidden</details><span data-mx-color="#ff0000" data-mx-bg-color="#00ff00">colour</span>' +
      '<a href="https://example.org/" target="_self" title="t">link</a><a href="mailto:a@example.org">mail</a>';
    const dom = parse(displayHtml(source));
    for (const tag of ["h1", "b", "i", "u", "strong", "em", "del", "s", "sup", "sub", "blockquote", "ol", "ul", "li", "hr", "br", "pre", "code", "table", "caption", "thead", "tbody", "tr", "th", "td", "details", "summary", "span", "a"]) {
      expect(dom.querySelector(tag), tag).not.toBeNull();
    }
    expect(dom.querySelector("ol")!.getAttribute("start")).toBe("3");
    expect(dom.querySelector("code")!.getAttribute("class")).toBe("language-ts");
    const span = dom.querySelector("span")!;
    expect(span.style.color).not.toBe("");
    expect(span.style.backgroundColor).not.toBe("");
    const link = dom.querySelector('a[href="https://example.org/"]')!;
    expect(link.getAttribute("target")).toBe("_blank");
    expect(link.getAttribute("rel")).toBe("noopener noreferrer");
    expect(link.hasAttribute("title")).toBe(false); // not an attribute the spec lists for <a>
    expect(dom.querySelector('a[href^="mailto:"]')).not.toBeNull();
  });

  it("drops relative links, unknown schemes and other attributes", () => {
    const dom = parse(
      displayHtml('<a href="/settings">rel</a><a href="data:text/html,x">data</a><p class="x" id="y" data-x="1">p</p><span data-mx-color="red">c</span>'),
    );
    expect(dom.querySelectorAll("a[href]")).toHaveLength(0);
    const p = dom.querySelector("p")!;
    expect(p.attributes).toHaveLength(0);
    expect(dom.querySelector("span")!.attributes).toHaveLength(0);
  });

  it("removes the mx-reply fallback with its content", () => {
    const html = displayHtml('<mx-reply><blockquote><a href="https://matrix.to/#/!r/$e">In reply to</a> old text</blockquote></mx-reply>the answer');
    expect(html).toBe("the answer");
  });

  it("keeps mxc images for the media helpers and drops the others", () => {
    const dom = parse(displayHtml('<img src="mxc://hs/abc" alt="cat" width="40" height="30"><img src="https://tracker.example/p.gif" alt="pixel">'));
    const images = dom.querySelectorAll("img");
    expect(images).toHaveLength(1);
    expect(images[0]!.getAttribute("data-mxc")).toBe("mxc://hs/abc");
    expect(images[0]!.hasAttribute("src")).toBe(false);
    expect(images[0]!.getAttribute("width")).toBe("40");
    expect(dom.textContent).toContain("pixel");
  });

  it("limits nesting to 100 levels", () => {
    const deep = "<div>".repeat(150) + "deep" + "</div>".repeat(150);
    const dom = parse(displayHtml(deep));
    let depth = 0;
    for (let node: Element | null = dom.firstElementChild; node; node = node.firstElementChild) depth++;
    expect(depth).toBeLessThanOrEqual(100);
    expect(dom.textContent).toBe("deep");
  });
});

describe("cleanHtml", () => {
  it("keeps mxc image sources for sending and adds nothing", () => {
    expect(cleanHtml('<img src="mxc://hs/abc" alt="a">')).toBe('<img src="mxc://hs/abc" alt="a">');
    expect(cleanHtml('<a href="https://x.org">x</a>')).toBe('<a href="https://x.org">x</a>');
  });
});

describe("markdownToHtml", () => {
  it("turns simple markdown into HTML", () => {
    expect(markdownToHtml("**bold** and *italic*")).toBe("<strong>bold</strong> and <em>italic</em>");
    expect(markdownToHtml("run `ls -l` now")).toBe("run <code>ls -l</code> now");
    expect(markdownToHtml("```js\nlet a = 1;\n```")).toBe('<pre><code class="language-js">let a = 1;\n</code></pre>');
    expect(markdownToHtml("see [the docs](https://example.org/docs)")).toBe('see <a href="https://example.org/docs">the docs</a>');
  });

  it("returns null for text the markdown does not change", () => {
    expect(markdownToHtml("hello there")).toBeNull();
    expect(markdownToHtml("two\nlines\n\nand a paragraph")).toBeNull();
    expect(markdownToHtml("visit https://example.org or mail a@example.org")).toBeNull();
    expect(markdownToHtml("a < b and <b>not html</b>")).toBeNull();
  });

  it("never lets markdown carry script or javascript: links", () => {
    const html = markdownToHtml('**hi** [x](javascript:alert(1)) <img src=x onerror="alert(1)">')!;
    expect(html).not.toMatch(/javascript:|<img/);
    expect(parse(html).querySelector("a")!.hasAttribute("href")).toBe(false);
    expect(html).toContain("<strong>hi</strong>");
    expect(html).toContain("&lt;img");
  });
});

describe("message contents", () => {
  it("sends formatted_body only when markdown formats something", () => {
    expect(textMessage("plain")).toEqual({ msgtype: "m.text", body: "plain" });
    expect(textMessage("**loud**", "$parent")).toEqual({
      msgtype: "m.text",
      body: "**loud**",
      format: "org.matrix.custom.html",
      formatted_body: "<strong>loud</strong>",
      "m.relates_to": { "m.in_reply_to": { event_id: "$parent" } },
    });
  });

  it("formats edits in both the fallback and the new content", () => {
    const edit = replacement("$orig", "*fixed*");
    expect(edit.formatted_body).toBe("* <em>fixed</em>");
    expect(edit["m.new_content"]).toEqual({ msgtype: "m.text", body: "*fixed*", format: "org.matrix.custom.html", formatted_body: "<em>fixed</em>" });
  });
});

describe("linkifyParts", () => {
  it("cuts text into text and links", () => {
    expect(linkifyParts("see https://example.org/a?b=1 and mail bob@example.org.")).toEqual([
      { text: "see " },
      { text: "https://example.org/a?b=1", href: "https://example.org/a?b=1" },
      { text: " and mail " },
      { text: "bob@example.org", href: "mailto:bob@example.org" },
      { text: "." },
    ]);
    expect(linkifyParts("no links here")).toEqual([{ text: "no links here" }]);
  });
});
