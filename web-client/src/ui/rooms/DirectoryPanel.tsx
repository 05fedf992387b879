/**
 * "Explore rooms": the server's public room directory with a server-side search,
 * paging, and "Join by address" for a #alias or !room ID.
 * spec: client-server-api/_index.md#post_matrixclientv3publicrooms
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type { IPublicRoomsChunkRoom } from "matrix-js-sdk";
import { Dialog } from "../Dialog";
import { client, panel, selectedRoomId } from "../../state/app";
import { errorMessage } from "../../rooms/errors";
import { Avatar } from "./Avatar";
import "./rooms.css";

const PAGE = 20;

export function DirectoryPanel() {
  const [term, setTerm] = useState("");
  const [rooms, setRooms] = useState<IPublicRoomsChunkRoom[]>([]);
  const [nextBatch, setNextBatch] = useState<string | undefined>();
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState("");
  // Only the answer to the latest search is shown, whatever order answers arrive in.
  const latest = useRef(0);

  const load = async (searchTerm: string, since?: string) => {
    const matrix = client.value;
    if (!matrix) return;
    const ticket = ++latest.current;
    setLoading(true);
    setError("");
    try {
      const response = await matrix.publicRooms({
        limit: PAGE,
        since,
        filter: searchTerm.trim() ? { generic_search_term: searchTerm.trim() } : undefined,
      });
      if (ticket !== latest.current) return;
      setRooms((previous) => (since ? [...previous, ...response.chunk] : response.chunk));
      setNextBatch(response.next_batch);
    } catch (caught) {
      if (ticket === latest.current) setError(errorMessage(caught));
    } finally {
      if (ticket === latest.current) setLoading(false);
    }
  };

  useEffect(() => {
    const timer = setTimeout(() => void load(term), term ? 300 : 0);
    return () => clearTimeout(timer);
  }, [term]);

  return (
    <Dialog title="Explore rooms">
      <div class="rooms-form">
        <label class="rooms-field">
          <span>Search public rooms</span>
          <input type="search" value={term} onInput={(e) => setTerm(e.currentTarget.value)} />
        </label>
        <JoinByAddress />
        {error && <p class="error-text" role="alert">{error}</p>}
        <ul class="rooms-result-list" aria-label="Public rooms" aria-busy={loading}>
          {rooms.map((room) => <DirectoryRoom key={room.room_id} room={room} />)}
        </ul>
        <p class="rooms-status-text" role="status">
          {loading ? "Loading…" : rooms.length === 0 && !error ? (term ? "No public rooms match." : "No public rooms yet.") : ""}
        </p>
        {nextBatch && !loading && (
          <div class="rooms-paging">
            <button type="button" onClick={() => void load(term, nextBatch)}>Show more</button>
          </div>
        )}
      </div>
    </Dialog>
  );
}

function DirectoryRoom({ room }: { room: IPublicRoomsChunkRoom }) {
  const name = room.name || room.canonical_alias || room.room_id;
  const joined = client.value?.getRoom(room.room_id)?.getMyMembership() === "join";
  const { busy, error, join } = useJoin();
  return (
    <li class="rooms-result-item">
      <Avatar name={name} mxc={room.avatar_url} />
      <div class="rooms-result-text">
        <span class="rooms-result-title">{name}</span>
        <span class="rooms-result-meta">
          {room.canonical_alias ? `${room.canonical_alias} · ` : ""}
          {room.num_joined_members} {room.num_joined_members === 1 ? "member" : "members"}
        </span>
        {room.topic && <span class="rooms-result-topic">{room.topic}</span>}
        {error && <p class="error-text" role="alert">{error}</p>}
      </div>
      {joined ? (
        <button type="button" onClick={() => ((selectedRoomId.value = room.room_id), (panel.value = null))}>Open</button>
      ) : (
        <button type="button" class="primary" disabled={busy} aria-label={`Join ${name}`}
          onClick={() => void join(room.canonical_alias ?? room.room_id)}>
          {busy ? "Joining…" : "Join"}
        </button>
      )}
    </li>
  );
}

function JoinByAddress() {
  const [address, setAddress] = useState("");
  const { busy, error, join } = useJoin();
  const submit = (event: Event) => {
    event.preventDefault();
    const value = address.trim();
    if (value) void join(value);
  };
  return (
    <form class="rooms-field" onSubmit={submit}>
      <label for="join-address">Join by address</label>
      <div class="rooms-inline-form">
        <input id="join-address" value={address} placeholder="#room:server or !id:server"
          pattern="[#!].+:.+" title="An address like #room:server, or a room ID like !abc:server"
          onInput={(e) => setAddress(e.currentTarget.value)} />
        <button type="submit" disabled={busy || !address.trim()}>{busy ? "Joining…" : "Join address"}</button>
      </div>
      {error && <p class="error-text" role="alert">{error}</p>}
    </form>
  );
}

/** Joins a room by ID or alias, then opens it and closes the panel. */
function useJoin() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const join = async (idOrAlias: string) => {
    const matrix = client.value;
    if (!matrix) return;
    setBusy(true);
    setError("");
    try {
      const room = await matrix.joinRoom(idOrAlias);
      selectedRoomId.value = room.roomId;
      panel.value = null;
    } catch (caught) {
      setError(errorMessage(caught));
      setBusy(false);
    }
  };
  return { busy, error, join };
}
