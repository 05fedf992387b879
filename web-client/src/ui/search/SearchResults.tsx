/** The search's result lists: messages, rooms (joined, or public to join) and people (to message). */
import { useState } from "preact/hooks";
import type { MatrixClient } from "matrix-js-sdk";
import { focusEvent, panel, selectedRoomId } from "../../state/app";
import { highlightParts } from "../../search/results";
import { startDm } from "../../rooms/create";
import { errorMessage } from "../../rooms/errors";
import type { MessageState, PersonHit, RoomHit } from "./useSearch";

/** Opens the room (and, for a message, scrolls to it) and closes the search. */
function close(roomId: string, eventId?: string) {
  selectedRoomId.value = roomId;
  focusEvent.value = eventId ? { roomId, eventId } : null;
  panel.value = null;
}

export function MessageGroup(props: { matrix: MatrixClient; state: MessageState; onLoadMore: () => void }) {
  const { matrix, state } = props;
  return (
    <section class="search-group" aria-labelledby="search-messages-heading" aria-busy={state.searching}>
      <h3 id="search-messages-heading">Messages</h3>
      {state.serverError && <p class="status-text">Server search unavailable: {state.serverError}</p>}
      {state.results.length === 0 && !state.searching && <p class="status-text">No messages found.</p>}
      <ul class="search-results">
        {state.results.map((result) => {
          const room = matrix.getRoom(result.roomId);
          const sender = room?.getMember(result.sender)?.name ?? result.sender;
          return (
            <li key={result.eventId}>
              <button type="button" class="search-result" onClick={() => close(result.roomId, result.eventId)}>
                <span class="search-result-meta">
                  <span class="search-result-room">{room?.name ?? result.roomId}</span>
                  <span>{sender}</span>
                  <time dateTime={new Date(result.ts).toISOString()}>{new Date(result.ts).toLocaleString()}</time>
                  {result.source === "local" && <span class="search-badge" title="Found in this device's index of encrypted rooms">Encrypted</span>}
                </span>
                <span class="search-result-body">
                  {highlightParts(result.body, state.highlights).map((part, i) => (part.match ? <mark key={i}>{part.text}</mark> : part.text))}
                </span>
              </button>
            </li>
          );
        })}
      </ul>
      {state.searching && <p class="status-text" role="status">Searching…</p>}
      {state.nextBatch && !state.searching && (
        <button type="button" onClick={props.onLoadMore}>Load more</button>
      )}
    </section>
  );
}

export function RoomGroup(props: { matrix: MatrixClient; rooms: RoomHit[] }) {
  const [error, setError] = useState("");
  const open = async (room: RoomHit) => {
    try {
      if (!room.joined) await props.matrix.joinRoom(room.id);
      close(room.id);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  };
  return (
    <section class="search-group" aria-labelledby="search-rooms-heading">
      <h3 id="search-rooms-heading">Rooms</h3>
      {error && <p class="error-text" role="alert">{error}</p>}
      {props.rooms.length === 0 && <p class="status-text">No rooms found.</p>}
      <ul class="search-results">
        {props.rooms.map((room) => (
          <li key={room.id}>
            <button type="button" class="search-result" onClick={() => void open(room)}>
              <span class="search-result-room">{room.name}</span>
              <span class="search-result-meta">{room.joined ? "Joined" : `Public room — join${room.topic ? ` · ${room.topic}` : ""}`}</span>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function PeopleGroup(props: { matrix: MatrixClient; people: PersonHit[] }) {
  const [error, setError] = useState("");
  const message = async (person: PersonHit) => {
    try {
      close(await startDm(props.matrix, person.userId, true));
    } catch (caught) {
      setError(errorMessage(caught));
    }
  };
  return (
    <section class="search-group" aria-labelledby="search-people-heading">
      <h3 id="search-people-heading">People</h3>
      {error && <p class="error-text" role="alert">{error}</p>}
      {props.people.length === 0 && <p class="status-text">Nobody found.</p>}
      <ul class="search-results">
        {props.people.map((person) => (
          <li key={person.userId}>
            <button type="button" class="search-result" onClick={() => void message(person)}>
              <span class="search-result-room">{person.name}</span>
              <span class="search-result-meta">{person.userId} — send a message</span>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
