/**
 * The open room's live timeline as a log: older history loaded when scrolled to the
 * top, day separators, consecutive messages of one sender grouped, membership and
 * state changes as short lines, and after the room's events the messages still
 * waiting in the outbox.
 */
import { Direction, NotificationCountType, type MatrixClient, type MatrixEvent, type Room } from "matrix-js-sdk";
import type { JSX } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { client, focusEvent, online, timelineRevision } from "../../state/app";
import { outboxItems, retryItem, discardItem } from "../../offline/outbox";
import { isPending, memberReceipts, receiptMarks, tickAt, type Tick } from "../../receipts/ticks";
import { Message, timeOf } from "./Message";
import { Ticks } from "./Ticks";
import { retryingTxnIds } from "./retrying";
import { applyRovingFocus, focusTargetForKey } from "./rovingFocus";
import { firstUnreadMessage } from "./newMessages";
import { stateEventText } from "./eventText";
import "./timeline.css";

const MESSAGE_TYPES = new Set(["m.room.message", "m.room.encrypted", "m.sticker"]);
/** Messages of one sender closer together than this share one name header. */
const GROUP_WINDOW_MS = 5 * 60_000;
/** How far back a jump to a message loads history looking for it. */
const JUMP_PAGES = 10;
const JUMP_PAGE_SIZE = 50;
/** How long the message jumped to stays highlighted. */
const HIGHLIGHT_MS = 2500;

/** Edits and reactions are shown on the message they relate to, not as messages. */
function isMessage(event: MatrixEvent): boolean {
  return MESSAGE_TYPES.has(event.getType()) && !event.isRelation("m.replace");
}

function dayLabel(ts: number, now = new Date()): string {
  const day = new Date(ts);
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (day.toDateString() === now.toDateString()) return "Today";
  if (day.toDateString() === yesterday.toDateString()) return "Yesterday";
  return day.toLocaleDateString(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

/** Events shown in the room, in order: the live timeline and, if the SDK keeps them apart, pending echoes. */
function roomEvents(room: Room): MatrixEvent[] {
  const live = room.getLiveTimeline().getEvents();
  try {
    return [...live, ...room.getPendingEvents()];
  } catch {
    return live; // pendingEventOrdering "chronological": the echoes are in the live timeline already
  }
}

export function Timeline(props: { room: Room }) {
  timelineRevision.value;
  const { room } = props;
  const matrix = client.value!;
  const me = matrix.getUserId()!;
  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const fromBottom = useRef(0);
  const firstShownId = useRef<string | null>(null);
  const [loadingOlder, setLoadingOlder] = useState(false);
  /** When loading older history last failed: automatic retries wait a while (offline, server down). */
  const olderFailedAt = useRef(0);
  /** A message found by a jump, to scroll to once it is rendered. */
  const scrollTo = useRef<string | null>(null);
  const [highlighted, setHighlighted] = useState<string | null>(null);
  const [jumpNotice, setJumpNotice] = useState<string | null>(null);
  const loadingForJump = useRef(false);
  const list = useRef<HTMLOListElement>(null);
  const [unreadFrom] = useState(() =>
    firstUnreadMessage(
      roomEvents(room).map((event) => ({ id: event.getId(), sender: event.getSender(), isMessage: isMessage(event) })),
      room.getEventReadUpTo(me),
      me,
      room.getUnreadNotificationCount(NotificationCountType.Total),
    ),
  );
  const shownDivider = useRef(false);
  /** New messages came in below while the user was reading further up. */
  const [newBelow, setNewBelow] = useState(false);
  const lastShownId = useRef<string | null>(null);
  const queuedCount = useRef(0);
  /** The message in the Tab order (roving focus, see rovingFocus.ts). */
  const activeMessage = useRef<HTMLElement | null>(null);
  const refreshRoving = () => {
    if (list.current) activeMessage.current = applyRovingFocus(list.current, activeMessage.current);
  };
  // Messages re-render on their own (reactions, decryption): re-apply when the list's content changes.
  useEffect(() => {
    const element = list.current;
    if (!element) return;
    const observer = new MutationObserver(refreshRoving);
    observer.observe(element, { childList: true, subtree: true });
    return () => observer.disconnect();
  }, []);
  const onListFocus = (event: FocusEvent) => {
    const message = (event.target as HTMLElement).closest<HTMLElement>("article.message");
    if (message && message !== activeMessage.current) {
      activeMessage.current = message;
      refreshRoving();
    }
  };
  const onListKeyDown = (event: KeyboardEvent) => {
    const from = event.target as HTMLElement;
    if (event.key === "Escape" && from.matches("article.message")) {
      // Out of the log in one key: the composer is where one goes next.
      const composer = scroller.current?.closest(".room-view")?.querySelector<HTMLElement>("textarea[aria-label=Message]");
      if (composer) {
        event.preventDefault();
        composer.focus();
      }
      return;
    }
    const target = list.current && focusTargetForKey(list.current, from, event.key, event.shiftKey);
    if (!target) return;
    event.preventDefault();
    if (target.matches("article.message")) {
      activeMessage.current = target;
      refreshRoving();
      target.scrollIntoView?.({ block: "nearest" });
    }
    target.focus();
  };

  const wanted = focusEvent.value?.roomId === room.roomId ? focusEvent.value.eventId : null;
  useEffect(() => {
    if (!wanted) return;
    let cancelled = false;
    setJumpNotice(null);
    loadingForJump.current = true;
    void loadUntilFound(matrix, room, wanted).then((shownId) => {
      loadingForJump.current = false;
      if (cancelled) return;
      if (focusEvent.value?.eventId === wanted) focusEvent.value = null;
      if (shownId) {
        scrollTo.current = shownId;
        setHighlighted(shownId);
      } else {
        setJumpNotice("That message is too far back to show here.");
      }
    });
    return () => {
      cancelled = true;
      loadingForJump.current = false;
    };
  }, [wanted, room]);
  useEffect(() => {
    if (!highlighted) return;
    const timer = setTimeout(() => setHighlighted(null), HIGHLIGHT_MS);
    return () => clearTimeout(timer);
  }, [highlighted]);

  const live = room.getLiveTimeline();
  const canLoadOlder =
    live.getPaginationToken(Direction.Backward) !== null && !live.getEvents().some((event) => event.getType() === "m.room.create");

  const loadOlder = async () => {
    if (loadingOlder || !canLoadOlder) return;
    setLoadingOlder(true);
    try {
      await matrix.paginateEventTimeline(live, { backwards: true, limit: 30 });
    } catch {
      // Offline: history stays as it is; scrolling up or the button retries.
      olderFailedAt.current = Date.now();
    } finally {
      setLoadingOlder(false);
    }
  };

  const events = roomEvents(room);
  const queued = outboxItems.value.filter(
    (item) => item.roomId === room.roomId && item.eventType === "m.room.message" && !isEditContent(item.content),
  );
  const queuedTxnIds = new Set(queued.map((item) => item.txnId));
  const retrying = retryingTxnIds.value;
  // The outbox shows its own items; an SDK echo of one of them would show it twice.
  const shown = events.filter((event) => !(isPending(event) && queuedTxnIds.has(event.getTxnId() ?? "")));
  const serverIds = events.filter((event) => !isPending(event)).map((event) => event.getId()!);
  const marks = receiptMarks(serverIds, memberReceipts(room, me));
  const tickOf = (event: MatrixEvent): Tick => tickAt(isPending(event) ? null : serverIds.indexOf(event.getId()!), marks);

  useLayoutEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const firstId = shown[0]?.getId() ?? null;
    // The user just sent something: show it, wherever they had scrolled to.
    if (queued.length > queuedCount.current) {
      atBottom.current = true;
      if (newBelow) setNewBelow(false);
    }
    queuedCount.current = queued.length;
    if (atBottom.current) element.scrollTop = element.scrollHeight;
    else if (firstId !== firstShownId.current) element.scrollTop = element.scrollHeight - fromBottom.current; // older history came in above
    firstShownId.current = firstId;
    fromBottom.current = element.scrollHeight - element.scrollTop;
    const target = scrollTo.current ? messageElement(element, scrollTo.current) : null;
    if (target) {
      scrollTo.current = null;
      target.scrollIntoView?.({ block: "center" });
      // Keyboard and screen reader users continue from the message jumped to.
      target.tabIndex = -1;
      target.focus({ preventScroll: true });
      atBottom.current = element.scrollHeight - element.scrollTop - element.clientHeight < 48;
      fromBottom.current = element.scrollHeight - element.scrollTop;
    }
    refreshRoving();
    const divider = unreadFrom && !shownDivider.current ? element.querySelector<HTMLElement>(".new-messages-divider") : null;
    if (divider) {
      shownDivider.current = true;
      // Only when the first unread message would be above the screen at the bottom.
      if (divider.offsetTop < element.scrollHeight - element.clientHeight) {
        divider.scrollIntoView?.({ block: "start" });
        atBottom.current = element.scrollHeight - element.scrollTop - element.clientHeight < 48;
        fromBottom.current = element.scrollHeight - element.scrollTop;
      }
    }
    const lastId = shown[shown.length - 1]?.getId() ?? null;
    if (lastShownId.current !== null && lastId !== lastShownId.current && !atBottom.current && !newBelow) setNewBelow(true);
    lastShownId.current = lastId;
    const recentlyFailed = Date.now() - olderFailedAt.current < 10_000;
    if (element.scrollHeight <= element.clientHeight && canLoadOlder && !loadingOlder && !recentlyFailed) void loadOlder();
  });

  const onScroll = () => {
    const element = scroller.current!;
    atBottom.current = element.scrollHeight - element.scrollTop - element.clientHeight < 48;
    fromBottom.current = element.scrollHeight - element.scrollTop;
    if (atBottom.current && newBelow) setNewBelow(false);
    if (element.scrollTop < 120 && !loadingForJump.current) void loadOlder();
  };

  const items: JSX.Element[] = [];
  let previous: MatrixEvent | null = null;
  let previousDay = "";
  for (const event of shown) {
    const day = new Date(event.getTs()).toDateString();
    if (day !== previousDay) {
      items.push(
        <li key={`day-${day}`} class="day-separator" role="separator">
          <span>{dayLabel(event.getTs())}</span>
        </li>,
      );
      previousDay = day;
      previous = null;
    }
    if (isMessage(event) && event.getId() === unreadFrom) {
      items.push(
        <li key="new-messages" class="new-messages-divider" role="separator">
          <span>New messages</span>
        </li>,
      );
      previous = null;
    }
    if (isMessage(event)) {
      const grouped =
        previous !== null &&
        isMessage(previous) &&
        previous.getSender() === event.getSender() &&
        event.getTs() - previous.getTs() < GROUP_WINDOW_MS;
      const classes = ["timeline-item", grouped && "grouped", highlighted !== null && event.getId() === highlighted && "jumped-to"];
      items.push(
        <li key={event.getId() ?? event.getTxnId()} class={classes.filter(Boolean).join(" ")}>
          <Message room={room} event={event} showSender={!grouped} tick={event.getSender() === me ? tickOf(event) : null} />
        </li>,
      );
      previous = event;
      continue;
    }
    if (!event.isState()) continue;
    const text = stateEventText(event, (userId) => room.getMember(userId)?.name ?? userId);
    if (text) {
      items.push(
        <li key={event.getId()} class="timeline-item state-line">
          {text} <time dateTime={new Date(event.getTs()).toISOString()}>{timeOf(event.getTs())}</time>
        </li>,
      );
      previous = event;
    }
  }
  for (const item of queued) {
    items.push(
      <li key={`outbox-${item.txnId}`} class="timeline-item">
        <article class="message own queued" aria-label="Your message waiting to be sent" data-txn-id={item.txnId}>
          <p class="message-body">{typeof item.content.body === "string" ? item.content.body : "Attachment"}</p>
          <footer class="message-meta">
            <time dateTime={new Date(item.createdTs).toISOString()}>{timeOf(item.createdTs)}</time>
            {item.state === "failed" ? (
              <span class="send-failed">
                <span class="error-text">Not sent{item.error ? `: ${item.error}` : ""}</span>
                <button type="button" onClick={() => void retryItem(item.txnId)}>Retry</button>
                <button type="button" onClick={() => void discardItem(item.txnId)}>Discard</button>
              </span>
            ) : online.value && retrying.has(item.txnId) && item.state === "queued" ? (
              <span class="send-failed">
                <span>Retrying…</span>
                <button type="button" onClick={() => void retryItem(item.txnId)}>Retry now</button>
                <Ticks tick="Sending" />
              </span>
            ) : (
              <Ticks tick="Sending" />
            )}
          </footer>
        </article>
      </li>,
    );
  }

  return (
    <div class="timeline" ref={scroller} onScroll={onScroll}>
      {jumpNotice && (
        <p class="timeline-notice" role="status">
          {jumpNotice}
          <button type="button" onClick={() => setJumpNotice(null)}>
            Dismiss
          </button>
        </p>
      )}
      {canLoadOlder && (
        <button type="button" class="load-older" disabled={loadingOlder} onClick={() => void loadOlder()}>
          {loadingOlder ? "Loading older messages…" : "Load older messages"}
        </button>
      )}
      <button
        type="button"
        class="skip-link"
        onClick={() => scroller.current?.closest(".room-view")?.querySelector<HTMLElement>("textarea[aria-label=Message]")?.focus()}
      >
        Skip to composer
      </button>
      <p class="visually-hidden" id={`timeline-keys-${room.roomId}`}>
        Up and down arrows move between messages, Enter reaches a message's actions, Escape goes to the composer.
      </p>
      <div role="log" aria-label="Messages" aria-live="polite" aria-describedby={`timeline-keys-${room.roomId}`}>
        <ol class="timeline-list" ref={list} onFocusIn={onListFocus} onKeyDown={onListKeyDown}>
          {items}
        </ol>
      </div>
      {newBelow && (
        <button
          type="button"
          class="jump-latest primary"
          onClick={() => {
            const element = scroller.current!;
            element.scrollTop = element.scrollHeight;
            atBottom.current = true;
            setNewBelow(false);
          }}
        >
          Jump to latest <span aria-hidden="true">↓</span>
        </button>
      )}
    </div>
  );
}

/** The rendered message with this event ID, if any. */
function messageElement(scroller: HTMLElement, eventId: string): HTMLElement | null {
  for (const element of Array.from(scroller.querySelectorAll<HTMLElement>("[data-event-id]"))) {
    if (element.dataset.eventId === eventId) return element;
  }
  return null;
}

/**
 * Loads older history of the live timeline until `eventId` is in it (at most
 * JUMP_PAGES pages), and answers the ID of the message that shows it: an edit or a
 * reaction shows on the message it relates to.  Null when it is not found.
 */
export async function loadUntilFound(matrix: MatrixClient, room: Room, eventId: string): Promise<string | null> {
  for (let page = 0; ; page++) {
    const live = room.getLiveTimeline();
    const found = live.getEvents().find((event) => event.getId() === eventId);
    if (found) {
      const relation = found.getRelation();
      const shownOn = relation?.rel_type === "m.replace" || relation?.rel_type === "m.annotation" ? relation.event_id : undefined;
      return shownOn ? loadUntilFound(matrix, room, shownOn) : eventId;
    }
    if (page >= JUMP_PAGES || live.getPaginationToken(Direction.Backward) === null) return null;
    try {
      await matrix.paginateEventTimeline(live, { backwards: true, limit: JUMP_PAGE_SIZE });
    } catch {
      return null; // offline: what is loaded is all there is for now
    }
  }
}

function isEditContent(content: Record<string, unknown>): boolean {
  const relation = content["m.relates_to"] as { rel_type?: string } | undefined;
  return relation?.rel_type === "m.replace";
}
