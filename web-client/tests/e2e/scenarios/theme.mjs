// Issue 15: "the theme chosen on one device appears after login on another, and a
// server-rendered page follows it".  Device A picks Dark in Settings; device B (fresh
// storage, light system preference) signs in as the same user and turns dark from the
// account data; a page the server renders (the UIA fallback page) is dark in B thanks
// to the cookie the client set, and stays light in a device without that cookie.

import { chooseTheme, closePanel, htmlTheme, openSettings, roomsNav, signIn } from "../support/app.mjs";
import { check, eventually } from "../support/expect.mjs";
import { requireUsers } from "../support/setup.mjs";

export default async function theme(ctx) {
    requireUsers(ctx, "alice");
    ctx.step("device A: alice picks Dark");
    const a = await ctx.device("alice-a", { colorScheme: "light" });
    await signIn(a.page, ctx.users.alice);
    check((await htmlTheme(a.page)) === "light", `device A starts ${await htmlTheme(a.page)}, not light`);
    await openSettings(a.page);
    await chooseTheme(a.page, "Dark");
    await eventually(async () => (await htmlTheme(a.page)) === "dark", "data-theme=dark on device A");
    await closePanel(a.page);
    ctx.result.cookie_a = (await a.context.cookies()).find((c) => c.name === "hs_theme")?.value ?? null;

    ctx.step("device B: alice signs in and gets Dark");
    const b = await ctx.device("alice-b", { colorScheme: "light" });
    await signIn(b.page, ctx.users.alice);
    await eventually(async () => (await htmlTheme(b.page)) === "dark", "data-theme=dark on device B after signing in", { timeout: 30_000 });
    ctx.step("device B: still dark after a reload (first paint from localStorage)");
    await b.page.reload();
    await roomsNav(b.page).waitFor({ state: "visible", timeout: 30_000 });
    const history = await b.page.evaluate(() => window.__e2eThemeHistory);
    ctx.result.theme_b_history_on_reload = history;
    ctx.result.theme_b_at_first_paint = history[0] ?? null;
    check(history.length > 0 && history.every((t) => t === "dark"), `device B's data-theme on reload went ${JSON.stringify(history)}, not dark from the start`);
    await eventually(async () => (await b.context.cookies()).some((c) => c.name === "hs_theme" && c.value === "dark"), "the hs_theme=dark cookie on device B");

    ctx.step("device B: a server-rendered page is dark");
    const session = await ctx.api("alice").uiaSession();
    const fallback = `/_matrix/client/v3/auth/m.login.password/fallback/web?session=${encodeURIComponent(session)}`;
    const response = await b.page.goto(fallback);
    ctx.result.fallback_status = response?.status() ?? null;
    check(response?.ok(), `the fallback page answered ${response?.status()}`);
    ctx.result.server_page_theme = await htmlTheme(b.page);
    check(ctx.result.server_page_theme === "dark", `the server-rendered page in device B has data-theme=${ctx.result.server_page_theme}`);

    ctx.step("a device without the cookie gets the page without dark");
    const c = await ctx.device("no-cookie", { colorScheme: "light" });
    await c.page.goto(fallback);
    ctx.result.server_page_theme_without_cookie = await htmlTheme(c.page);
    check(ctx.result.server_page_theme_without_cookie !== "dark", "the server-rendered page is dark without the cookie");
}
