/**
 * The "Rooms" navigation: actions (new room, start chat, explore), a filter, the
 * invites, then people and rooms by latest activity with their unread badges.
 * The room buttons are one Tab stop with a roving tabindex: Up/Down, Home/End move
 * between them, Enter or Space opens one (they are buttons); Down in the filter
 * goes to the first.
 */
import type { ComponentChildren } from "preact";
import { useMemo, useRef, useState } from "preact/hooks";
import { client, panel, roomsRevision, selectedRoomId } from "../../state/app";
import { filterSummaries, sortSummaries, summarizeRooms, type RoomSummary } from "../../rooms/summary";
import { Avatar } from "./Avatar";
import { InviteItem } from "./InviteItem";
import { PresenceDot } from "../timeline/PresenceDot";
import "./rooms.css";

export function RoomList() {
  const matrix = client.value;
  const revision = roomsRevision.value;
  const [query, setQuery] = useState("");
  const summaries = useMemo(() => (matrix ? sortSummaries(summarizeRooms(matrix)) : []), [matrix, revision]);
  const shown = filterSummaries(summaries, query);
  const invites = shown.filter((room) => room.membership === "invite");
  const joined = shown.filter((room) => room.membership === "join");
  const people = joined.filter((room) => room.isDirect);
  const groups = joined.filter((room) => !room.isDirect);
  const itemsRef = useRef<HTMLDivElement>(null);
  const [focusedId, setFocusedId] = useState<string | null>(null);
  const ordered = [...people, ...groups].map((room) => room.roomId);
  // The one room button Tab reaches: the last one focused, else the open room, else the first.
  const tabStop = [focusedId, selectedRoomId.value].find((id) => id !== null && ordered.includes(id)) ?? ordered[0];
  const focusItem = (index: number) => {
    const buttons = roomButtons(itemsRef.current);
    buttons[Math.max(0, Math.min(index, buttons.length - 1))]?.focus();
  };
  const onItemsKeyDown = (event: KeyboardEvent) => {
    const buttons = roomButtons(itemsRef.current);
    const current = buttons.indexOf(document.activeElement as HTMLButtonElement);
    if (current < 0) return;
    const moves: Record<string, number> = { ArrowDown: current + 1, ArrowUp: current - 1, Home: 0, End: buttons.length - 1 };
    const target = moves[event.key];
    if (target === undefined) return;
    event.preventDefault();
    focusItem(target);
  };

  return (
    <div class="room-list">
      <div class="room-list-toolbar">
        <button type="button" onClick={() => (panel.value = { kind: "create-room" })}>New room</button>
        <button type="button" onClick={() => (panel.value = { kind: "start-dm" })}>Start chat</button>
        <button type="button" onClick={() => (panel.value = { kind: "directory" })}>Explore rooms</button>
      </div>
      <label class="room-filter">
        <span class="visually-hidden">Filter rooms</span>
        <input type="search" placeholder="Filter rooms" value={query} onInput={(event) => setQuery(event.currentTarget.value)}
          onKeyDown={(event) => {
            if (event.key !== "ArrowDown" || ordered.length === 0) return;
            event.preventDefault();
            focusItem(0);
          }} />
      </label>
      {invites.length > 0 && (
        <RoomSection title="Invites">
          {invites.map((room) => <InviteItem key={room.roomId} room={room} />)}
        </RoomSection>
      )}
      <div class="room-list-rooms" ref={itemsRef} onKeyDown={onItemsKeyDown} onFocusIn={(event) => {
        const id = (event.target as HTMLElement).dataset.roomId;
        if (id) setFocusedId(id);
      }}>
        {people.length > 0 && (
          <RoomSection title="People">
            {people.map((room) => <RoomItem key={room.roomId} room={room} tabbable={room.roomId === tabStop} />)}
          </RoomSection>
        )}
        {groups.length > 0 && (
          <RoomSection title="Rooms">
            {groups.map((room) => <RoomItem key={room.roomId} room={room} tabbable={room.roomId === tabStop} />)}
          </RoomSection>
        )}
      </div>
      {shown.length === 0 && (
        <p class="room-list-empty">{query ? "No rooms match." : "No rooms yet. Create one, start a chat, or explore public rooms."}</p>
      )}
    </div>
  );
}

function RoomSection(props: { title: string; children: ComponentChildren }) {
  return (
    <section class="room-section">
      <h3 class="room-section-title">{props.title}</h3>
      <ul class="room-items">{props.children}</ul>
    </section>
  );
}

function roomButtons(container: HTMLElement | null): HTMLButtonElement[] {
  return container ? [...container.querySelectorAll<HTMLButtonElement>("button[data-room-id]")] : [];
}

function RoomItem({ room, tabbable }: { room: RoomSummary; tabbable: boolean }) {
  const current = selectedRoomId.value === room.roomId;
  const unreadLabel = room.unread > 0 ? `${room.unread} unread${room.highlights > 0 ? `, ${room.highlights} mentioning you` : ""}` : "";
  return (
    <li>
      <button
        type="button"
        class={room.unread > 0 ? "room-item unread" : "room-item"}
        aria-current={current ? "page" : undefined}
        data-room-id={room.roomId}
        tabIndex={tabbable ? 0 : -1}
        onClick={() => (selectedRoomId.value = room.roomId)}
      >
        <Avatar name={room.name} mxc={room.avatarMxc} />
        <span class="room-item-text">
          <span class="room-item-name">
            {room.name}
            {room.partnerId && <> <PresenceDot userId={room.partnerId} /></>}
          </span>
          {room.preview && <span class="room-item-preview">{room.preview}</span>}
        </span>
        {room.unread > 0 && (
          <span class={room.highlights > 0 ? "rooms-badge highlight" : "rooms-badge"} title={unreadLabel}>
            <span aria-hidden="true">{room.unread > 99 ? "99+" : room.unread}</span>
            <span class="visually-hidden">{unreadLabel}</span>
          </span>
        )}
      </button>
    </li>
  );
}
