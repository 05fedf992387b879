/**
 * The timeline as one Tab stop (WAI-ARIA "roving tabindex"): only one message is in the
 * Tab order; Up/Down (Home/End) move between messages; the controls inside a message
 * (actions, reactions, links, players) are in the Tab order only for that message, and
 * Enter or the context-menu key (Shift+F10) moves into them; Escape comes back out.
 */

const MESSAGE = "article.message";
const CONTROLS = "a[href], button, input, select, textarea, audio[controls], video[controls], [tabindex]";
/** Marks the controls this module took out of the Tab order, so only those are put back. */
const PARKED = "data-roving-parked";

function messages(list: HTMLElement): HTMLElement[] {
  return Array.from(list.querySelectorAll<HTMLElement>(MESSAGE));
}

function controlsOf(message: HTMLElement): HTMLElement[] {
  return Array.from(message.querySelectorAll<HTMLElement>(CONTROLS));
}

/**
 * Puts `active` (or, when it is gone, the last message) in the Tab order and every
 * other message and its controls out of it.  Returns the message now active.
 */
export function applyRovingFocus(list: HTMLElement, active: HTMLElement | null): HTMLElement | null {
  const all = messages(list);
  const current = active && active.isConnected && all.includes(active) ? active : (all[all.length - 1] ?? null);
  for (const message of all) {
    const isActive = message === current;
    if (message.tabIndex !== (isActive ? 0 : -1)) message.tabIndex = isActive ? 0 : -1;
    for (const control of controlsOf(message)) {
      if (isActive) {
        if (control.hasAttribute(PARKED)) {
          const original = control.getAttribute(PARKED)!;
          control.removeAttribute(PARKED);
          if (original === "") control.removeAttribute("tabindex");
          else control.setAttribute("tabindex", original);
        }
      } else if (!control.hasAttribute(PARKED) && (!control.hasAttribute("tabindex") || control.tabIndex >= 0)) {
        control.setAttribute(PARKED, control.getAttribute("tabindex") ?? "");
        control.tabIndex = -1;
      }
    }
  }
  return current;
}

/** The message a key press on `from` (a message or a control in one) moves the focus to, or a control to focus. */
export function focusTargetForKey(list: HTMLElement, from: HTMLElement, key: string, shiftKey: boolean): HTMLElement | null {
  const message = from.closest<HTMLElement>(MESSAGE);
  if (!message || !list.contains(message)) return null;
  if (from !== message) return key === "Escape" ? message : null; // inside: keys belong to the control
  const all = messages(list);
  const index = all.indexOf(message);
  switch (key) {
    case "ArrowUp":
      return all[Math.max(0, index - 1)] ?? null;
    case "ArrowDown":
      return all[Math.min(all.length - 1, index + 1)] ?? null;
    case "Home":
      return all[0] ?? null;
    case "End":
      return all[all.length - 1] ?? null;
    case "Enter":
    case "ContextMenu":
      return firstAction(message);
    case "F10":
      return shiftKey ? firstAction(message) : null;
    default:
      return null;
  }
}

function firstAction(message: HTMLElement): HTMLElement | null {
  return message.querySelector<HTMLElement>(".message-actions button") ?? controlsOf(message)[0] ?? null;
}
